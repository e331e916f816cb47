"""Sample grids during training: one row per validation example, condition | sample | truth.

Sampling uses the diffusion package's ancestral (or DDIM, eta 0) loop over a respaced process
(config.sample_grid.steps) with PITI/GLIDE classifier-free guidance when guidance_scale != 1.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from glide_jax.diffusion import guidance, sampling
from glide_jax.models.piti import null_condition
from glide_jax.pipelines.inputs import make_grid, to_uint8
from glide_jax.pipelines.stages import process_for
from glide_jax.train.sharding import global_batch, replicated
from glide_jax.train.step import MODEL_BATCH_KEYS, model_kwargs

SAMPLES_DIR = "samples"
MIN_TILE = 96   # grid tiles are enlarged to at least this many pixels


def create_process(options, respacing: str = ""):
    """The diffusion process of a model's options (respaced for sampling when asked): the same
    one the sampling pipelines use."""
    return process_for(options, respacing)


def _uncond_kwargs(kwargs, options, empty_prompt):
    out = dict(kwargs)
    if options["family"] == "piti":
        out["ref"] = null_condition(kwargs["ref"])
    else:  # GLIDE's unconditional pass: the empty prompt
        tokens, mask = empty_prompt
        out["tokens"] = jnp.broadcast_to(jnp.asarray(tokens, jnp.int32), kwargs["tokens"].shape)
        out["mask"] = jnp.broadcast_to(jnp.asarray(mask, bool), kwargs["mask"].shape)
    return out


def make_sample_fn(model, options, respacing: str, guidance_scale: float, empty_prompt=None,
                   sampler: str = "ancestral"):
    """sample(params, batch, key) -> x_0 [B, R, R, 3] in [-1, 1] (jit-compiled)."""
    process = create_process(options, respacing)
    loops = {"ancestral": sampling.p_sample_loop, "ddim": sampling.ddim_sample_loop}
    if sampler not in loops:
        raise ValueError(f"grid sampler {sampler!r} not in {tuple(loops)}")
    loop = loops[sampler]

    def apply(params, x, t, **kwargs):
        return model.apply({"params": params}, x, t, train=False, **kwargs).astype(jnp.float32)

    @jax.jit
    def sample(params, batch, key):
        kwargs = model_kwargs(batch, options)
        fn = functools.partial(apply, params)
        if guidance_scale == 1.0:
            model_fn = guidance.conditional_model(fn, kwargs)
        else:
            model_fn = guidance.classifier_free_guidance(
                fn, kwargs, _uncond_kwargs(kwargs, options, empty_prompt), guidance_scale)
        return loop(process, model_fn, batch["image"].shape, key)

    return sample


def _resize_nearest(images: np.ndarray, size: int) -> np.ndarray:
    h = images.shape[1]
    if h == size:
        return images
    idx = (np.arange(size) * h // size).astype(int)
    return images[:, idx][:, :, idx]


def grid_rows(batch: dict, samples: np.ndarray) -> np.ndarray:
    """[N*3, R, R, 3] uint8: per example its condition (ref_ori, low_res or blank), sample, truth."""
    truth = to_uint8(batch["image"])
    size = truth.shape[1]
    if "ref_ori" in batch:
        cond = to_uint8(_resize_nearest(np.asarray(batch["ref_ori"]), size))
    elif "low_res" in batch:
        cond = to_uint8(_resize_nearest(np.asarray(batch["low_res"]), size))
    else:
        cond = np.zeros_like(truth)
    rows = np.stack([cond, to_uint8(samples), truth], axis=1)
    return rows.reshape((-1,) + truth.shape[1:])


def write_grid(workdir: str, name: str, batch: dict, samples: np.ndarray, writer=None,
               step: int = 0) -> str:
    """Writes workdir/samples/<name>.png (and a TensorBoard image); returns the path. Tiles
    smaller than MIN_TILE pixels are enlarged (nearest) by an integer factor so they can be read."""
    import io
    from etils import epath
    from PIL import Image
    grid = make_grid(grid_rows(batch, samples), ncols=3)
    scale = max(1, MIN_TILE // samples.shape[1])
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    path = epath.Path(workdir) / SAMPLES_DIR / f"{name}.png"
    if jax.process_index() == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        Image.fromarray(grid).save(buffer, format="PNG")
        path.write_bytes(buffer.getvalue())
        if writer is not None:
            writer.write_images(step, {"samples": grid[None]})
    return path


class GridMaker:
    """Holds one fixed validation batch and the compiled sampler for the run's grids."""

    def __init__(self, model, options, config, mesh, val_batch, tokenizer=None):
        g = config.sample_grid
        self.mesh = mesh
        self.batch = val_batch
        empty = tokenizer("") if tokenizer is not None else None
        self.sample = make_sample_fn(model, options, g.steps, float(g.guidance_scale), empty,
                                     g.sampler)
        self.use_ema = bool(g.use_ema)

    def __call__(self, state, workdir: str, name: str, writer=None) -> str:
        params = state.ema_params[0] if self.use_ema else state.params
        batch = global_batch(self.batch, self.mesh, MODEL_BATCH_KEYS)
        key = jax.device_put(jax.random.PRNGKey(1234), replicated(self.mesh))
        samples = self.sample(params, batch, key)
        samples = np.asarray(jax.device_get(
            multihost_utils.process_allgather(samples, tiled=True)
            if jax.process_count() > 1 else samples))
        full = {k: np.asarray(v) for k, v in self.batch.items()}
        if jax.process_count() > 1:
            full = {k: np.asarray(multihost_utils.process_allgather(v))
                    .reshape((-1,) + np.shape(v)[1:]) for k, v in full.items()
                    if k in ("image", "ref_ori", "low_res")}
        return str(write_grid(workdir, name, full, samples, writer, int(state.step)))
