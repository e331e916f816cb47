"""GLIDE and PITI networks (linen, NHWC).

`create_model(options)` builds the network an official option dict describes (see
`glide_jax.models.options`); `example_inputs`, `init_params` and `abstract_params` give what
`init`/`apply` need without knowing the family.
"""
from __future__ import annotations

import math
from typing import Any, Dict

import flax.linen as nn
import jax
import jax.numpy as jnp

from glide_jax.models import options as options_lib
from glide_jax.models.glide import (InpaintText2ImUNet, SuperResInpaintText2ImUNet,
                                    SuperResText2ImUNet, Text2ImUNet)
from glide_jax.models.options import PRESETS, resolve_options, validate_options
from glide_jax.models.piti import PITIDecoder, PITIModel, PITISuperResModel, TaskEncoder
from glide_jax.modes import null_condition

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _unet_kwargs(opts: Dict[str, Any]) -> Dict[str, Any]:
    return dict(
        model_channels=opts["num_channels"],
        out_channels=6 if opts["learn_sigma"] else 3,
        num_res_blocks=opts["num_res_blocks"],
        attention_ds=options_lib.attention_ds(opts),
        dropout=float(opts["dropout"]),
        channel_mult=options_lib.channel_mult(opts),
        num_heads=opts["num_heads"],
        num_head_channels=opts["num_head_channels"],
        num_heads_upsample=opts["num_heads_upsample"],
        use_scale_shift_norm=opts["use_scale_shift_norm"],
        resblock_updown=opts["resblock_updown"],
        use_checkpoint=opts["use_checkpoint"],
        dtype=_DTYPES[opts["dtype"]],
    )


def create_model(options: Dict[str, Any]) -> nn.Module:
    """The GLIDE or PITI network for an option dict (missing keys take the family defaults).

    GLIDE: Text2ImUNet / SuperResText2ImUNet / InpaintText2ImUNet / SuperResInpaintText2ImUNet
    by `inpaint` and `super_res`. PITI (`family` "piti" or a `mode` given): PITIModel, whose
    decoder upsamples `low_res` when `super_res` is non-zero.
    """
    opts = resolve_options(options)
    kwargs = _unet_kwargs(opts)
    if opts["family"] == "piti":
        super_res = bool(opts["super_res"])
        n_class = options_lib.n_class(opts)
        width, layers, heads = options_lib.encoder_size(opts)
        encoder = TaskEncoder(n_class=n_class, mode=opts["mode"],
                              use_checkpoint=opts["use_checkpoint"], dtype=kwargs["dtype"],
                              width=width, layers=layers, heads=heads)
        decoder = PITIDecoder(in_channels=6 if super_res else 3, encoder_channels=width,
                              super_res=super_res, spatial=opts["encoder_spatial"], **kwargs)
        cls = PITISuperResModel if super_res else PITIModel
        return cls(encoder=encoder, decoder=decoder)
    cls = {(False, False): Text2ImUNet, (False, True): SuperResText2ImUNet,
           (True, False): InpaintText2ImUNet,
           (True, True): SuperResInpaintText2ImUNet}[(opts["inpaint"], opts["super_res"])]
    return cls(encoder_channels=opts["xf_width"], text_ctx=opts["text_ctx"],
               xf_width=opts["xf_width"], xf_layers=opts["xf_layers"], xf_heads=opts["xf_heads"],
               xf_final_ln=opts["xf_final_ln"], xf_padding=opts["xf_padding"],
               n_vocab=opts["n_vocab"], **kwargs)


def example_inputs(options: Dict[str, Any], batch_size: int = 1) -> Dict[str, Any]:
    """Keyword inputs for `model.init` / `model.apply`: zeros of the right shapes and dtypes.

    Always `x_t` [B, S, S, 3] float32 and `timesteps` [B] float32; GLIDE adds `tokens`
    [B, text_ctx] int32 (end token) and `mask` [B, text_ctx] bool (all False: the empty prompt),
    plus `low_res` [B, 64, 64, 3] (super_res; S // 4 for other sizes) and `inpaint_image`
    [B, S, S, 3] / `inpaint_mask` [B, S, S, 1] (inpaint); PITI adds `ref` [B, 256, 256, n_class]
    (the null condition, ones) and `low_res` for its upsampler.
    """
    opts = resolve_options(options)
    b, size = batch_size, opts["image_size"]
    low = opts["super_res"] if opts["family"] == "piti" and opts["super_res"] else size // 4
    inputs = dict(x_t=jnp.zeros((b, size, size, 3), jnp.float32),
                  timesteps=jnp.zeros((b,), jnp.float32))
    if opts["super_res"]:
        inputs["low_res"] = jnp.zeros((b, low, low, 3), jnp.float32)
    if opts["family"] == "piti":
        inputs["ref"] = jnp.ones((b, 256, 256, options_lib.n_class(opts)), jnp.float32)
        return inputs
    ctx = opts["text_ctx"]
    inputs["tokens"] = jnp.full((b, ctx), opts["n_vocab"] - 1, jnp.int32)
    inputs["mask"] = jnp.zeros((b, ctx), bool)
    if opts["inpaint"]:
        inputs["inpaint_image"] = jnp.zeros((b, size, size, 3), jnp.float32)
        inputs["inpaint_mask"] = jnp.zeros((b, size, size, 1), jnp.float32)
    return inputs


def init_params(options: Dict[str, Any], rng: jax.Array) -> Dict[str, Any]:
    """Freshly initialised float32 params (the 'params' collection) for `options`."""
    model = create_model(options)
    init = jax.jit(lambda key, inputs: model.init({"params": key}, **inputs)["params"])
    return init(rng, example_inputs(options))


def abstract_params(options: Dict[str, Any]) -> Dict[str, Any]:
    """Param tree of jax.ShapeDtypeStruct (shapes/dtypes only, nothing allocated)."""
    return jax.eval_shape(lambda rng: init_params(options, rng), jax.random.key(0))


def count_params(tree) -> int:
    """Total number of scalars of a param tree (arrays or jax.ShapeDtypeStruct leaves) or of a
    flat {name: shape tuple} mapping (converter layouts): the project's one parameter count."""
    def is_shape(x):
        return isinstance(x, tuple) and all(isinstance(d, int) for d in x)
    leaves = jax.tree_util.tree_leaves(tree, is_leaf=is_shape)
    return int(sum(math.prod(x if is_shape(x) else x.shape) for x in leaves))


__all__ = [
    "create_model", "example_inputs", "init_params", "abstract_params", "count_params",
    "resolve_options", "validate_options", "PRESETS", "Text2ImUNet", "SuperResText2ImUNet",
    "InpaintText2ImUNet", "SuperResInpaintText2ImUNet", "PITIModel", "PITISuperResModel",
    "PITIDecoder", "TaskEncoder", "null_condition",
]
