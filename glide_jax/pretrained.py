"""Weights that ship with glide_jax: the demo prior.

The demo prior is a small text-to-image GLIDE (`Text2ImUNet`, 32x32, a byte-level text
transformer) trained by this project on the procedural shapes world with
`configs/demo_prior.py`. It is what `configs/demo.py` finetunes into a PITI mask-to-image model,
and the frozen prior of the MCM and CoDi demos.

Files (package data, `glide_jax/assets/demo_prior/`):
  weights.safetensors  float32 EMA params under the official glide-text2im state-dict names (so
                       the official `Text2ImUNet` built from options.json loads them too)
  options.json         the model options (`glide_jax.models.create_model`)
  PROVENANCE.json      the command, steps, batch, wall time, machine, final loss, sha256

Rebuild them (hours on a CPU) with

    python -m glide_jax.main --config=configs/demo_prior.py --workdir=/tmp/demo_prior
    python -m glide_jax.pretrained export --workdir=/tmp/demo_prior
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from typing import Optional, Sequence

DEMO_PRIOR_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "demo_prior")
WEIGHTS_FILE = "weights.safetensors"
OPTIONS_FILE = "options.json"
PROVENANCE_FILE = "PROVENANCE.json"
REBUILD = ("python -m glide_jax.main --config=configs/demo_prior.py --workdir=/tmp/demo_prior && "
           "python -m glide_jax.pretrained export --workdir=/tmp/demo_prior")


class PretrainedError(RuntimeError):
    """A shipped weights file is missing or does not match its recorded sha256."""


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_json(path: str) -> dict:
    if not os.path.isfile(path):
        raise PretrainedError(f"{path} is missing; rebuild the demo prior with: {REBUILD}")
    with open(path) as f:
        return json.load(f)


def demo_prior_files(directory: str = DEMO_PRIOR_DIR) -> dict:
    """Paths of the demo prior's files, after checking the weights' sha256 (PretrainedError)."""
    weights = os.path.join(directory, WEIGHTS_FILE)
    provenance = _read_json(os.path.join(directory, PROVENANCE_FILE))
    if not os.path.isfile(weights):
        raise PretrainedError(f"{weights} is missing; rebuild the demo prior with: {REBUILD}")
    digest = sha256_of(weights)
    if digest != provenance["sha256"]:
        raise PretrainedError(
            f"{weights} is corrupted: sha256 {digest[:16]}... differs from the recorded "
            f"{provenance['sha256'][:16]}... in {PROVENANCE_FILE}; restore it from the repository "
            f"(git checkout -- {os.path.relpath(weights)}) or rebuild it with: {REBUILD}")
    return {"weights": weights, "options": os.path.join(directory, OPTIONS_FILE),
            "provenance": os.path.join(directory, PROVENANCE_FILE)}


def demo_prior_options(directory: str = DEMO_PRIOR_DIR) -> dict:
    """The demo prior's model options (no weights read)."""
    return _read_json(os.path.join(directory, OPTIONS_FILE))


def load_demo_prior(directory: str = DEMO_PRIOR_DIR) -> tuple[dict, dict]:
    """(Flax params, options) of the shipped demo prior, sha256-checked."""
    from glide_jax.convert import load_state_dict, torch_to_flax
    files = demo_prior_files(directory)
    options = demo_prior_options(directory)
    return torch_to_flax(load_state_dict(files["weights"]), options), options


def read_provenance(directory: str = DEMO_PRIOR_DIR) -> dict:
    """PROVENANCE.json of the shipped prior: how it was trained and what it scores."""
    return _read_json(os.path.join(directory, PROVENANCE_FILE))


def caption_fidelity(params, options, per_shape: int = 32, steps: str = "50",
                     guidance_scale: float = 3.0, seed: int = 0) -> dict:
    """Do the prior's samples show the shapes their captions name? `per_shape` samples for
    each caption "a <shape> over grass under the sky", ancestral sampling with classifier-free
    guidance; glide_jax.data.fidelity.shape_presence of the samples (recall of the named shape,
    presence of the unnamed ones)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from glide_jax import model_fns
    from glide_jax.data import fidelity
    from glide_jax.diffusion import process_from_options, sampling
    from glide_jax.models import create_model
    from glide_jax.tokenizer import default_tokenizer
    model, tok = create_model(options), default_tokenizer(int(options["n_vocab"]))
    captions = [f"a {s} over grass under the sky" for s in fidelity.SHAPE_NAMES] * per_shape
    tokens, mask = tok.encode_batch(captions, int(options["text_ctx"]))
    fn = model_fns.guided_model_fn(model, {"params": params}, options,
                                   {"tokens": jnp.asarray(tokens), "mask": jnp.asarray(mask)},
                                   guidance_scale)
    process = process_from_options(options, steps)
    size = int(options["image_size"])
    samples = jax.jit(lambda k: sampling.p_sample_loop(
        process, fn, (len(captions), size, size, 3), k))(jax.random.PRNGKey(seed))
    out = fidelity.shape_presence(np.asarray(samples), captions)
    out.update(samples_per_shape=per_shape, steps=steps, guidance_scale=guidance_scale,
               seed=seed)
    return out


def export_demo_prior(workdir: str, out_dir: str = DEMO_PRIOR_DIR,
                      command: Optional[str] = None) -> dict:
    """Write the EMA params of `workdir`'s latest checkpoint as the shipped demo prior."""
    import numpy as np
    from glide_jax.convert import flax_to_torch, save_state_dict
    from glide_jax import saved_params
    from glide_jax.models import count_params
    params, options = saved_params.load_workdir(workdir, use_ema=True)
    state_dict = {k: np.asarray(v, np.float32) for k, v in flax_to_torch(params, options).items()}
    os.makedirs(out_dir, exist_ok=True)
    weights = os.path.join(out_dir, WEIGHTS_FILE)
    save_state_dict(weights, state_dict)
    with open(os.path.join(out_dir, OPTIONS_FILE), "w") as f:
        json.dump(dict(options), f, indent=1, sort_keys=True)
    os.chmod(weights, 0o644)  # package data: readable by everyone
    step = saved_params.latest_step(workdir)
    provenance = {
        "command": command or "python -m glide_jax.main --config=configs/demo_prior.py "
                              f"--workdir={workdir}",
        "export_command": f"python -m glide_jax.pretrained export --workdir={workdir}",
        "steps": int(step),
        "parameters": count_params(state_dict),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
        "exported": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "sha256": sha256_of(weights),
    }
    provenance.update(_training_record(workdir, int(step)))
    provenance["shape_presence"] = caption_fidelity(params, options)
    with open(os.path.join(out_dir, PROVENANCE_FILE), "w") as f:
        json.dump(provenance, f, indent=1)
    return provenance


def _training_record(workdir: str, step: int) -> dict:
    """Batch size (saved config), wall time up to `step` and the last losses logged at or before
    it (TensorBoard events)."""
    import glob
    import tensorflow as tf  # export only: reading the run's event files
    from glide_jax import saved_params
    record = {"batch_size": int(saved_params.read_record(workdir)["config"]["train"]["batch_size"])}
    first = last = None
    for path in sorted(glob.glob(os.path.join(workdir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            if event.step > step:
                continue
            first = event.wall_time if first is None else min(first, event.wall_time)
            last = event.wall_time if last is None else max(last, event.wall_time)
            for value in event.summary.value:
                if value.tag in ("train/loss", "train/mse_mean", "train/vb_mean"):
                    record["final_" + value.tag.split("/")[1]] = float(
                        tf.make_ndarray(value.tensor) if value.HasField("tensor")
                        else value.simple_value)
                    record["final_logged_step"] = int(event.step)
    if first is not None:
        record["wall_time_hours"] = round((last - first) / 3600, 2)
    return record


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m glide_jax.pretrained", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="write a training workdir's EMA params as the demo prior")
    export.add_argument("--workdir", required=True)
    export.add_argument("--out", default=DEMO_PRIOR_DIR)
    sub.add_parser("check", help="verify the shipped demo prior's sha256")
    args = parser.parse_args(argv)
    if args.command == "export":
        print(json.dumps(export_demo_prior(args.workdir, args.out), indent=1))
    else:
        files = demo_prior_files()
        print(f"ok: {files['weights']} matches its recorded sha256")


if __name__ == "__main__":
    main()
