"""Shared pieces of the reference generator (`tools/make_reference.py`): importing the official
code from a checkout, the weight/input recipes, and the float64 run of the official code.

Nothing here is imported by glide_jax or its tests.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import subprocess
import sys
import types

import numpy as np

# The recipes are defined once, by the tests that rebuild what the generator drew: the fixtures'
# weight recipe and the references' input recipe.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.fixture_utils import recipe_tensor  # noqa: E402,F401
from tests.reference_utils import recipe_input, sha16  # noqa: E402,F401


def import_official(glide_path: str, piti_path: str) -> None:
    """Put both checkouts on sys.path. PITI's text2im_model.py imports timm's PatchEmbed but never
    uses it: a stub module stands in, so timm (and torchvision) need not be installed."""
    for path in (glide_path, piti_path):
        if path not in sys.path:
            sys.path.insert(0, path)
    if "timm" not in sys.modules:
        names = ("timm", "timm.models", "timm.models.vision_transformer")
        mods = {n: types.ModuleType(n) for n in names}
        mods["timm.models.vision_transformer"].PatchEmbed = object
        mods["timm"].models = mods["timm.models"]
        mods["timm.models"].vision_transformer = mods["timm.models.vision_transformer"]
        sys.modules.update(mods)


def git_commit(path: str) -> str:
    try:
        return subprocess.check_output(["git", "-C", path, "rev-parse", "HEAD"], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def file_sha16(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def rel_err(ours, truth) -> float:
    ours, truth = np.asarray(ours, np.float64), np.asarray(truth, np.float64)
    norm = np.linalg.norm(truth)
    diff = np.linalg.norm(ours - truth)
    return float(diff / norm) if norm > 0 else float(diff)


def _timestep_embedding_f64(timesteps, dim, max_period=10000):
    """Sinusoidal embedding with the frequency table in float64 (the official one builds it in
    float32, an island of float32 inside an otherwise float64 run)."""
    import torch as th
    half = dim // 2
    freqs = th.exp(-math.log(max_period) * th.arange(half, dtype=th.float64) / half)
    args = timesteps[:, None].to(th.float64) * freqs[None]
    emb = th.cat([th.cos(args), th.sin(args)], dim=-1)
    if dim % 2:
        emb = th.cat([emb, th.zeros_like(emb[:, :1])], dim=-1)
    return emb


@contextlib.contextmanager
def float64_islands_lifted(modules=()):
    """Inside: Tensor.float() leaves float64 tensors float64 (GroupNorm32, LayerNorm, the
    attention softmax, _extract_into_tensor and timestep casts all go through it), and
    `timestep_embedding` in `modules` builds its frequencies in float64."""
    import torch as th
    original_float = th.Tensor.float

    def float_keep64(self, *args, **kwargs):
        if self.dtype == th.float64:
            return self
        return original_float(self, *args, **kwargs)

    saved = [(m, m.timestep_embedding) for m in modules if hasattr(m, "timestep_embedding")]
    th.Tensor.float = float_keep64
    for module, _ in saved:
        module.timestep_embedding = _timestep_embedding_f64
    try:
        yield
    finally:
        th.Tensor.float = original_float
        for module, fn in saved:
            module.timestep_embedding = fn


@contextlib.contextmanager
def randn_like_returns(noise):
    """th.randn_like(x) returns `noise` (cast to x's dtype) inside the block."""
    import torch as th
    original = th.randn_like
    th.randn_like = lambda x, *a, **k: th.as_tensor(noise).to(x.dtype)
    try:
        yield
    finally:
        th.randn_like = original
