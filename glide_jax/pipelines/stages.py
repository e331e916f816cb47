"""One diffusion stage: the process for a model's options and the sampler a recipe names.

Everything numeric comes from glide_jax.diffusion (process, sampling loops, guidance); this module
only maps StageSettings onto it.
"""
from __future__ import annotations

import functools

from glide_jax.diffusion import sampling as _sampling
from glide_jax.diffusion.process import create_gaussian_diffusion
from glide_jax.pipelines.presets import StageSettings


@functools.lru_cache(maxsize=32)
def _process(steps, learn_sigma, sigma_small, noise_schedule, use_kl, predict_xstart,
             rescale_timesteps, rescale_learned_sigmas, respacing):
    return create_gaussian_diffusion(
        steps=steps, learn_sigma=learn_sigma, sigma_small=sigma_small,
        noise_schedule=noise_schedule, use_kl=use_kl, predict_xstart=predict_xstart,
        rescale_timesteps=rescale_timesteps, rescale_learned_sigmas=rescale_learned_sigmas,
        timestep_respacing=respacing)


def process_for(options: dict, respacing: str):
    """The respaced sampling process of a model (its option dict's diffusion keys)."""
    return _process(int(options.get("diffusion_steps", 1000)),
                    bool(options.get("learn_sigma", True)), bool(options.get("sigma_small", False)),
                    options.get("noise_schedule", "linear"), bool(options.get("use_kl", False)),
                    bool(options.get("predict_xstart", False)),
                    bool(options.get("rescale_timesteps", False)),
                    bool(options.get("rescale_learned_sigmas", False)), str(respacing))


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

