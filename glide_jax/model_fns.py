"""Model functions for sampling: a network, its params and a condition -> model_fn(x_t, t).

What the training grids and the sampling pipelines both run, above models and diffusion and
below train and pipelines (which never import each other). A model function maps
(x_t [B, H, W, 3], t_model [B] float32) -> [B, H, W, 6 or 3] float32, the network output with
classifier-free guidance applied when `guidance_scale` is not 1:

* PITI: the condition is encoded once, outside the sampling loop (the task encoder does not see
  the timestep); the unconditional pass uses the all-ones null condition (PITI
  `glide_util.sample`).
* GLIDE: the unconditional pass is the empty prompt, every position the end token with an
  all-False mask (glide-text2im's notebooks).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, Optional

import jax.numpy as jnp

from glide_jax.diffusion import guidance
from glide_jax.modes import null_condition

ModelFn = Callable[[Any, Any], Any]


def _piti_decode(module, x_t, timesteps, xf_proj, xf_out, low_res=None):
    """The PITI decoder on pre-computed encoder outputs (PITIModel.__call__ after encoding)."""
    return module.decoder(x_t, timesteps, xf_proj, xf_out, low_res)


def _piti_encoded(model, variables, ref) -> dict:
    xf_proj, xf_out = model.apply(variables, ref, method="encode")
    return {"xf_proj": xf_proj, "xf_out": xf_out}


def piti_model_fn(model, variables, ref, guidance_scale: float = 1.0,
                  normalize: Optional[float] = None, low_res=None) -> ModelFn:
    """PITI: eps = eps(null) + s * (eps(ref) - eps(null)), variance channels from the
    conditional pass; `low_res` for the upsampler (never guided)."""
    decode = functools.partial(model.apply, variables, method=_piti_decode)
    cond = _piti_encoded(model, variables, ref)
    if low_res is not None:
        cond["low_res"] = low_res
    if guidance_scale == 1.0 and normalize is None:
        return guidance.conditional_model(decode, cond)
    uncond = dict(cond, **_piti_encoded(model, variables, null_condition(ref)))
    return guidance.classifier_free_guidance(decode, cond, uncond, guidance_scale,
                                             normalize=normalize)


def glide_model_fn(model, variables, kwargs: Mapping[str, Any], end_token: int,
                   guidance_scale: float = 1.0, normalize: Optional[float] = None) -> ModelFn:
    """GLIDE: kwargs holds tokens [B, ctx], mask [B, ctx] and, by model, inpaint_image /
    inpaint_mask / low_res; the unconditional pass swaps in the empty prompt."""
    apply = functools.partial(model.apply, variables)
    kwargs = dict(kwargs)
    if guidance_scale == 1.0 and normalize is None:
        return guidance.conditional_model(apply, kwargs)
    uncond = dict(kwargs, tokens=jnp.full_like(kwargs["tokens"], end_token),
                  mask=jnp.zeros_like(kwargs["mask"]))
    return guidance.classifier_free_guidance(apply, kwargs, uncond, guidance_scale,
                                             normalize=normalize)


def guided_model_fn(model, variables, options: Mapping[str, Any], kwargs: Mapping[str, Any],
                    guidance_scale: float = 1.0, normalize: Optional[float] = None,
                    end_token: Optional[int] = None) -> ModelFn:
    """The model function of either family from the network's keyword inputs (`ref` [+
    `low_res`] for PITI; tokens, mask [+ inpaint, low_res] for GLIDE). GLIDE's end token
    defaults to the last vocabulary entry (n_vocab - 1), as its tokenizers pad."""
    if options["family"] == "piti":
        return piti_model_fn(model, variables, kwargs["ref"], guidance_scale, normalize,
                             kwargs.get("low_res"))
    end = int(options["n_vocab"]) - 1 if end_token is None else int(end_token)
    return glide_model_fn(model, variables, kwargs, end, guidance_scale, normalize)
