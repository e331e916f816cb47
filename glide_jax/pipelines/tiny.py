"""Tiny random-weight models for demos, notebooks (GLIDE_JAX_NOTEBOOK_TINY=1), tests and CPU
benchmarks: the official architectures at toy widths (base 16x16, upsampler 64x64)."""
from __future__ import annotations

import jax
import numpy as np

from glide_jax.models import PRESETS, abstract_params

TINY_NOTEBOOK_ENV = "GLIDE_JAX_NOTEBOOK_TINY"
_TINY_BASE = dict(image_size=16, num_channels=32, num_res_blocks=1, channel_mult="1,1",
                  num_head_channels=16, attention_resolutions="16,8", dropout=0.0,
                  xf_width=32, xf_layers=1, xf_heads=2, text_ctx=16, n_vocab=257)
_TINY_UPSAMPLE = dict(_TINY_BASE, image_size=64, channel_mult="1,1,1,1", attention_resolutions="8")


def tiny_options(preset: str) -> dict:
    """An official preset (`glide_jax.models.PRESETS` name) shrunk to toy size.

    PITI models keep their fixed 512-wide task encoder (it is part of the architecture); GLIDE
    models get a 1-layer 32-wide text transformer and the 257-token byte vocabulary
    (GlideTokenizer.tiny()).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    options = dict(PRESETS[preset])
    options.update(_TINY_UPSAMPLE if options["super_res"] else _TINY_BASE)
    if options["family"] == "piti":
        options["xf_width"] = 512  # the PITI encoder's width is fixed
        if options["super_res"]:
            options["super_res"] = _TINY_BASE["image_size"]
    return options


def random_params(options: dict, seed: int = 0) -> dict:
    """Random float32 params for `options`, drawn with NumPy from the abstract param tree.

    Much faster than `init_params` on CPU (nothing is compiled). Kernels N(0, 1/fan_in), norm
    scales 1 + 0.1 N(0, 1), biases and other 1-D params 0.1 N(0, 1), embeddings 0.5 N(0, 1)
    (the fixtures' recipe), so activations stay O(1) and guidance/sampling see non-trivial outputs.
    """
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = jax.tree_util.keystr(path)
        z = rng.standard_normal(leaf.shape)
        if len(leaf.shape) == 1:
            z = 1.0 + 0.1 * z if "scale" in name else 0.1 * z
        elif "embedding" in name or "cls_token" in name:
            z = 0.5 * z
        else:
            z = z / np.sqrt(max(1, int(np.prod(leaf.shape[:-1]))))
        return z.astype(np.float32)

    return jax.tree_util.tree_map_with_path(draw, abstract_params(options))


def tiny_model(preset: str, seed: int = 0) -> tuple[dict, dict]:
    """(params, options) of a randomly initialised tiny model."""
    options = tiny_options(preset)
    return random_params(options, seed), options


def tiny_piti_pipeline(kind: str = "mask", seed: int = 0, upsample: bool = True, **kwargs):
    """A PITIPipeline on tiny random models; kind: "mask", "sketch" (or "depth", base only)."""
    from glide_jax.pipelines.piti import PITIPipeline
    base = tiny_model(f"piti-base-{kind}", seed)
    up = tiny_model(f"piti-upsample-{kind}", seed + 1) if upsample else None
    return PITIPipeline(base, up, **kwargs)


def tiny_glide_pipeline(inpaint: bool = False, seed: int = 0, upsample: bool = True, **kwargs):
    """A GLIDEPipeline on tiny random models with the byte-level tokenizer."""
    from glide_jax.pipelines.glide import GLIDEPipeline
    suffix = "-inpaint" if inpaint else ""
    base = tiny_model(f"glide-base{suffix}", seed)
    up = tiny_model(f"glide-upsample{suffix}", seed + 1) if upsample else None
    return GLIDEPipeline(base, up, **kwargs)
