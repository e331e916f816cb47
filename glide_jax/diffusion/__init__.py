"""Gaussian diffusion of GLIDE/PITI on arrays: schedules, respacing, the process (q/p, losses),
sampling loops, guidance wrappers, training timestep samplers and the two-stage hand-off."""
from glide_jax.diffusion.guidance import (classifier_free_guidance, conditional_model,
                                          gradient_cond_fn, inpaint_denoised_fn,
                                          normalized_guidance)
from glide_jax.diffusion.handoff import UPSAMPLE_TEMPERATURE, quantize_low_res
from glide_jax.diffusion.process import (GaussianDiffusion, LossType, ModelMeanType, ModelVarType,
                                         create_gaussian_diffusion, process_from_options)
from glide_jax.diffusion.resample import (LossSecondMomentSampler, UniformSampler,
                                          create_named_schedule_sampler)
from glide_jax.diffusion.sampling import ddim_sample_loop, dpm_solver_sample_loop, p_sample_loop
from glide_jax.diffusion.schedules import (get_named_beta_schedule, respace_betas,
                                           space_timesteps)

__all__ = [
    "GaussianDiffusion", "LossType", "ModelMeanType", "ModelVarType", "UPSAMPLE_TEMPERATURE",
    "LossSecondMomentSampler", "UniformSampler", "classifier_free_guidance", "conditional_model",
    "create_gaussian_diffusion", "create_named_schedule_sampler", "ddim_sample_loop",
    "dpm_solver_sample_loop", "get_named_beta_schedule", "gradient_cond_fn",
    "inpaint_denoised_fn", "normalized_guidance", "p_sample_loop", "process_from_options",
    "quantize_low_res",
    "respace_betas", "space_timesteps",
]
