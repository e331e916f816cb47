"""Sample grids during training: one row per validation example, condition | sample | truth.

Sampling runs the diffusion package's ancestral (or DDIM, eta 0) loop over a respaced process
(config.sample_grid.steps) with the same guided model function as the sampling pipelines
(`glide_jax.model_fns`: PITI's null condition, GLIDE's empty prompt) when guidance_scale != 1.
"""
from __future__ import annotations


import logging

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath
from jax.experimental import multihost_utils

from glide_jax import images, model_fns, parallel
from glide_jax.diffusion import process_from_options, sampling
from glide_jax.train import state as state_lib
from glide_jax.train.step import MODEL_BATCH_KEYS, model_kwargs

SAMPLES_DIR = "samples"
GRID_SAMPLERS = {"ancestral": sampling.p_sample_loop, "ddim": sampling.ddim_sample_loop}


def make_sample_fn(model, options, respacing: str, guidance_scale: float,
                   end_token=None, sampler: str = "ancestral"):
    """sample(params, batch, key) -> x_0 [B, R, R, 3] in [-1, 1] (jit-compiled)."""
    process = process_from_options(options, respacing)
    if sampler not in GRID_SAMPLERS:
        raise ValueError(f"grid sampler {sampler!r} not in {tuple(GRID_SAMPLERS)}")
    loop = GRID_SAMPLERS[sampler]

    @jax.jit
    def sample(params, batch, key):
        fn = model_fns.guided_model_fn(model, {"params": params}, options,
                                       model_kwargs(batch, options), guidance_scale,
                                       end_token=end_token)
        as_f32 = lambda x, t: fn(x, t).astype(jnp.float32)  # noqa: E731
        return loop(process, as_f32, batch["image"].shape, key)

    return sample


def grid_image(batch: dict, samples: np.ndarray) -> np.ndarray:
    """The grid of condition (ref_ori, else low_res, else blank) | sample | truth rows, uint8,
    tiles enlarged to at least images.MIN_TILE pixels."""
    condition = batch.get("ref_ori", batch.get("low_res"))
    return images.condition_sample_truth_grid(samples, batch["image"], condition)


def write_grid(workdir: str, name: str, batch: dict, samples: np.ndarray, writer=None,
               step: int = 0) -> str:
    """Writes workdir/samples/<name>.png (and a TensorBoard image); returns the path."""
    grid = grid_image(batch, samples)
    path = epath.Path(workdir) / SAMPLES_DIR / f"{name}.png"
    if jax.process_index() == 0:
        images.save_png(path, grid)
        if writer is not None:
            writer.write_images(step, {"samples": grid[None]})
    return str(path)


class GridMaker:
    """Holds one fixed validation batch and the compiled sampler for the run's grids."""

    def __init__(self, model, options, config, mesh, val_batch, end_token=None):
        g = config.sample_grid
        self.mesh = mesh
        self.batch = val_batch
        self.fidelity = bool(g.fidelity)
        self.sample = make_sample_fn(model, options, g.steps, float(g.guidance_scale),
                                     end_token, g.sampler)
        self.use_ema = bool(g.use_ema)

    def samples(self, state) -> np.ndarray:
        """Samples for the grid batch from the state's (EMA) params, on every host."""
        params = state_lib.sampling_params(state, self.use_ema)
        batch = parallel.global_batch(self.batch, self.mesh, MODEL_BATCH_KEYS)
        key = jax.device_put(jax.random.PRNGKey(1234), parallel.replicated(self.mesh))
        return parallel.to_host(self.sample(params, batch, key))

    def host_batch(self) -> dict:
        """The grid batch's image, condition and low-res rows of every process."""
        full = {k: np.asarray(v) for k, v in self.batch.items()
                if k in ("image", "ref_ori", "low_res", "label")}
        if jax.process_count() > 1:
            full = {k: np.asarray(multihost_utils.process_allgather(v)).reshape(
                (-1,) + np.shape(v)[1:]) for k, v in full.items()}
        return full

    def __call__(self, state, workdir: str, name: str, writer=None) -> str:
        batch, samples, step = self.host_batch(), self.samples(state), int(state.step)
        if self.fidelity:  # the grid's own mask mIoU (a handful of masks: a rough number)
            from glide_jax.data import fidelity
            miou = fidelity.mask_fidelity(
                samples, fidelity.labels_from_colour_masks(batch["ref_ori"]))["miou"]
            logging.info("grid %s: mask mIoU %.3f over its %d masks", name, miou, len(samples))
            if writer is not None:
                writer.write_scalars(step, {"grid/miou": miou})
        return write_grid(workdir, name, batch, samples, writer, step)


__all__ = ["GridMaker", "make_sample_fn", "grid_image", "write_grid"]
