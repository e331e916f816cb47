"""Tiny random-weight models for demos, notebooks (GLIDE_JAX_NOTEBOOK_TINY=1), tests and CPU
benchmarks: the official architectures at toy widths (base 16x16, upsampler 64x64)."""
from __future__ import annotations

import jax
import numpy as np

from glide_jax.models import abstract_params
from glide_jax.models.options import tiny_options

TINY_NOTEBOOK_ENV = "GLIDE_JAX_NOTEBOOK_TINY"
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
