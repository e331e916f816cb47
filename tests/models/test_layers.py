"""Primitive layers against direct numpy statements of the official formulas."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glide_jax.models.glide import upsample_bilinear
from glide_jax.models.layers import GroupNorm, LayerNorm, gelu, qkv_attention, timestep_embedding


def test_timestep_embedding_is_cos_then_sin():
    t = np.array([0.0, 1.0, 37.5, 999.0], np.float32)
    dim = 16
    emb = np.asarray(timestep_embedding(t, dim))
    freqs = np.exp(-math.log(10000.0) * np.arange(8) / 8)
    args = t[:, None].astype(np.float64) * freqs[None]
    np.testing.assert_allclose(emb, np.concatenate([np.cos(args), np.sin(args)], 1), atol=2e-4)
    assert emb.dtype == np.float32
    np.testing.assert_array_equal(emb[0, :8], 1.0)  # cos(0) block first
    np.testing.assert_array_equal(emb[0, 8:], 0.0)


def test_group_norm_contiguous_groups_eps_float32():
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 64)).astype(np.float32) * 1e-3
    params = {"params": {"scale": np.ones(64, np.float32), "bias": np.zeros(64, np.float32)}}
    y = np.asarray(GroupNorm().apply(params, x))
    g = x.astype(np.float64).reshape(2, 9, 32, 2)
    ref = (g - g.mean((1, 3), keepdims=True)) / np.sqrt(g.var((1, 3), keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, ref.reshape(x.shape), atol=1e-5)
    y16 = GroupNorm().apply(params, jnp.asarray(x, jnp.bfloat16))
    assert y16.dtype == jnp.bfloat16


def test_instance_norm_is_per_channel():
    x = np.random.default_rng(1).standard_normal((2, 4, 4, 3)).astype(np.float32)
    params = {"params": {"scale": np.ones(3, np.float32), "bias": np.zeros(3, np.float32)}}
    y = np.asarray(GroupNorm(num_groups=None).apply(params, x))
    ref = (x - x.mean((1, 2), keepdims=True)) / np.sqrt(x.var((1, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_layer_norm_eps():
    x = np.random.default_rng(2).standard_normal((2, 5, 8)).astype(np.float32) * 1e-3
    params = {"params": {"scale": np.ones(8, np.float32), "bias": np.zeros(8, np.float32)}}
    y = np.asarray(LayerNorm().apply(params, x))
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, ref, atol=1e-4)


def test_gelu_is_exact_erf():
    x = np.linspace(-4, 4, 101).astype(np.float32)
    ref = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    np.testing.assert_allclose(np.asarray(gelu(x)), ref, atol=1e-6)


def _attention_reference(qkv, heads, ekv):
    """The official QKVAttention written out per head in NCL terms."""
    b, t, c3 = qkv.shape
    ch = c3 // 3 // heads
    out = np.zeros((b, t, heads * ch))
    for h in range(heads):
        block = qkv[:, :, h * 3 * ch:(h + 1) * 3 * ch]
        q, k, v = block[..., :ch], block[..., ch:2 * ch], block[..., 2 * ch:]
        eblock = ekv[:, :, h * 2 * ch:(h + 1) * 2 * ch]
        k = np.concatenate([eblock[..., :ch], k], 1)
        v = np.concatenate([eblock[..., ch:], v], 1)
        w = np.einsum("btc,bsc->bts", q, k) / math.sqrt(ch)
        w = np.exp(w - w.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        out[:, :, h * ch:(h + 1) * ch] = np.einsum("bts,bsc->btc", w, v)
    return out


def test_attention_head_major_layout_and_encoder_first():
    rng = np.random.default_rng(3)
    heads, ch, t, s = 3, 4, 5, 2
    qkv = rng.standard_normal((2, t, heads * 3 * ch)).astype(np.float32)
    ekv = rng.standard_normal((2, s, heads * 2 * ch)).astype(np.float32)
    with jax.default_matmul_precision("highest"):
        out = np.asarray(qkv_attention(qkv, heads, ekv))
    np.testing.assert_allclose(out, _attention_reference(qkv, heads, ekv), atol=1e-5)


def _torch_bilinear_reference(x, size):
    """F.interpolate(bilinear, align_corners=False): half-pixel source, clamped at 0."""
    b, h, w, c = x.shape

    def taps(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, src - lo

    y0, y1, fy = taps(h, size[0])
    x0, x1, fx = taps(w, size[1])
    rows = x[:, y0] * (1 - fy)[None, :, None, None] + x[:, y1] * fy[None, :, None, None]
    return rows[:, :, x0] * (1 - fx)[None, None, :, None] + rows[:, :, x1] * fx[None, None, :, None]


@pytest.mark.parametrize("low,high", [(4, 16), (64, 256), (3, 7)])
def test_bilinear_upsample_matches_align_corners_false(low, high):
    x = np.random.default_rng(4).standard_normal((1, low, low, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(upsample_bilinear(x, (high, high))),
                               _torch_bilinear_reference(x, (high, high)), atol=1e-5)
