"""Building pipelines from converted checkpoint dirs or a training workdir (for sample mode)."""
from __future__ import annotations

import os

from glide_jax.saved_params import load_converted, load_workdir


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
