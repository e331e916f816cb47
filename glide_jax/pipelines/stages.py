"""One diffusion stage: the process for a model's options and the sampler a recipe names.

Everything numeric comes from glide_jax.diffusion (process, sampling loops, guidance); this module
only maps StageSettings onto it.
"""
from __future__ import annotations

from glide_jax.diffusion import sampling as _sampling
from glide_jax.pipelines.presets import StageSettings


def sample(process, model_fn, shape, key, settings: StageSettings, denoised_fn=None,
           cond_fn=None):
    """Runs the whole loop the settings name; returns x_0 [B, H, W, 3] float32 in [-1, 1]."""
    common = dict(temperature=settings.temperature, clip_denoised=settings.clip_denoised,
                  denoised_fn=denoised_fn)
    if settings.sampler == "ancestral":
        return _sampling.p_sample_loop(process, model_fn, shape, key, cond_fn=cond_fn, **common)
    if settings.sampler == "ddim":
        return _sampling.ddim_sample_loop(process, model_fn, shape, key, eta=settings.eta,
                                          cond_fn=cond_fn, **common)
    if cond_fn is not None:
        raise ValueError("CLIP guidance (cond_fn) needs the ancestral or ddim sampler, "
                         "not dpm-solver")
    return _sampling.dpm_solver_sample_loop(process, model_fn, shape, key, **common)

