"""Building pipelines from converted checkpoint dirs or a training workdir (for sample mode)."""
from __future__ import annotations

import os


def load_converted(directory) -> tuple[dict, dict]:
    """(params, options) from a `python -m glide_jax.convert to-flax ... --out DIR` directory."""
    from glide_jax.convert import load_params
    return load_params(directory)


def load_workdir(workdir: str, use_ema: bool = True, phases=()) -> tuple[dict, dict]:
    """(params, options) of the latest training checkpoint under `workdir` (EMA params by default).

    Multi-phase configs train each phase in <workdir>/<phase>: the last phase that saved wins.
    """
    from glide_jax.train import checkpoints
    for phase in reversed(tuple(phases)):
        if checkpoints.latest_step(os.path.join(workdir, phase)) is not None:
            return checkpoints.load_for_sampling(os.path.join(workdir, phase), use_ema=use_ema)
    return checkpoints.load_for_sampling(workdir, use_ema=use_ema)


def pipeline_from_config(config, workdir: str):
    """A PITIPipeline or GLIDEPipeline from `config.sample` (see get_sample_config).

    `base_checkpoint` / `upsample_checkpoint` are converted dirs; an empty one is taken from the
    workdir's latest checkpoint, for the stage the workdir trains (a base workdir plus a converted
    upsampler is the usual finetuning setup).
    """
    from glide_jax.pipelines.glide import GLIDEPipeline
    from glide_jax.pipelines.piti import PITIPipeline
    sample = config.sample
    use_ema = bool(sample.use_ema)
    if not sample.base_checkpoint and not sample.upsample_checkpoint and not os.path.isdir(workdir):
        raise FileNotFoundError(f"no config.sample.base_checkpoint given and workdir {workdir!r} "
                                "does not exist")
    base = upsample = None
    if sample.base_checkpoint:
        base = load_converted(sample.base_checkpoint)
    if sample.upsample_checkpoint:
        upsample = load_converted(sample.upsample_checkpoint)
    if base is None or (upsample is None and sample.upsample):
        trained = load_workdir(workdir, use_ema, config.get("phases", ()))
        if trained[1].get("super_res"):
            upsample = upsample or trained
        else:
            base = base or trained
    if base is None:
        raise ValueError("sampling needs a base model: set config.sample.base_checkpoint to a "
                         "converted dir (the workdir trains an upsampler)")
    if not sample.upsample:
        upsample = None
    family = base[1].get("family", "glide")
    cls = PITIPipeline if family == "piti" else GLIDEPipeline
    return cls(base, upsample)
