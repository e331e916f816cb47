"""Primitive layers shared by the GLIDE UNet, the text transformer and the PITI encoder.

Numerics follow the official PyTorch code: every norm normalises in float32 with eps 1e-5 and
returns the input dtype, GELU is the exact erf form, attention softmax runs in float32 and
PyTorch's default initialisation (kaiming-uniform a=sqrt(5), uniform bias) is reproduced so that
layers not loaded from a checkpoint start from the same distribution.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any

# PyTorch's kaiming_uniform_(a=sqrt(5)) is U(-1/sqrt(fan_in), 1/sqrt(fan_in)): variance 1/(3 fan_in).
torch_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
zeros_init = nn.initializers.zeros


def torch_bias_init(fan_in: int):
    """PyTorch's default bias initialiser U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def Dense(features: int, fan_in: int, dtype: Dtype, name: Optional[str] = None,
          zero_init: bool = False) -> nn.Dense:
    """A Linear / Conv1d(kernel 1) layer module; params float32, compute in `dtype`."""
    return nn.Dense(
        features, dtype=dtype, param_dtype=jnp.float32, name=name,
        kernel_init=zeros_init if zero_init else torch_kernel_init,
        bias_init=zeros_init if zero_init else torch_bias_init(fan_in))


def Conv(features: int, in_features: int, kernel: int, dtype: Dtype, name: Optional[str] = None,
         stride: int = 1, zero_init: bool = False) -> nn.Conv:
    """Conv2d module (NHWC) with PyTorch's symmetric padding kernel // 2 (never 'SAME': it pads
    stride-2 convs asymmetrically)."""
    pad = kernel // 2
    return nn.Conv(
        features, (kernel, kernel), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
        dtype=dtype, param_dtype=jnp.float32, name=name,
        kernel_init=zeros_init if zero_init else torch_kernel_init,
        bias_init=zeros_init if zero_init else torch_bias_init(in_features * kernel * kernel))


def dense(x, features: int, name: str, dtype: Dtype, zero_init: bool = False):
    """Apply a `Dense` over the last axis of x (inside a compact method)."""
    return Dense(features, x.shape[-1], dtype, name, zero_init)(x)


def conv(x, features: int, kernel: int, name: str, dtype: Dtype, stride: int = 1,
         zero_init: bool = False):
    """Apply a `Conv` to x [B, H, W, C] (inside a compact method)."""
    return Conv(features, x.shape[-1], kernel, dtype, name, stride, zero_init)(x)


class GroupNorm(nn.Module):
    """GroupNorm over contiguous channel groups, normalised in float32, eps 1e-5, affine.

    `num_groups=None` gives one group per channel (InstanceNorm2d with affine=True); PyTorch's
    biased variance is used. x: [B, ..., C] -> same shape and dtype.
    """
    num_groups: Optional[int] = 32
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        groups = c if self.num_groups is None else self.num_groups
        if c % groups:
            raise ValueError(f"GroupNorm: {c} channels are not divisible into {groups} groups")
        scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
        bias = self.param("bias", zeros_init, (c,), jnp.float32)
        x32 = x.astype(jnp.float32)
        g = x32.reshape(x.shape[:-1] + (groups, c // groups))
        axes = tuple(range(1, g.ndim - 2)) + (g.ndim - 1,)
        mean = jnp.mean(g, axis=axes, keepdims=True)
        var = jnp.mean(jnp.square(g - mean), axis=axes, keepdims=True)
        y = ((g - mean) * jax.lax.rsqrt(var + self.epsilon)).reshape(x.shape)
        return (y * scale + bias).astype(x.dtype)


class LayerNorm(nn.Module):
    """LayerNorm over the last axis in float32, eps 1e-5 (PyTorch's default), affine."""
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
        bias = self.param("bias", zeros_init, (c,), jnp.float32)
        x32 = x.astype(jnp.float32)
        mean = jnp.mean(x32, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x32 - mean), axis=-1, keepdims=True)
        y = (x32 - mean) * jax.lax.rsqrt(var + self.epsilon)
        return (y * scale + bias).astype(x.dtype)


def gelu(x):
    """Exact (erf) GELU, as torch.nn.GELU(); flax's default is the tanh approximation."""
    return nn.gelu(x, approximate=False)


def timestep_embedding(timesteps, dim: int, max_period: float = 10000.0):
    """Sinusoidal embedding [cos | sin] (cosine block first), float32.

    timesteps: [B] (float, possibly fractional, original 0..999 scale) -> [B, dim] float32.
    Frequencies are formed as in PyTorch: exp((-ln(max_period) * i) / half).
    """
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = jnp.asarray(timesteps, jnp.float32)[:, None] * freqs[None]
    emb = jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)
    if dim % 2:
        emb = jnp.concatenate([emb, jnp.zeros_like(emb[:, :1])], axis=-1)
    return emb


def qkv_attention(qkv, num_heads: int, encoder_kv=None):
    """Multi-head attention on the official head-major packed projections.

    qkv: [B, T, 3C] whose channels are ordered (head, q/k/v, dim); encoder_kv: optional
    [B, S, 2C] ordered (head, k/v, dim), whose tokens are placed BEFORE the T image tokens in the
    keys and values. No mask. q and k are each scaled by dim**-0.25 as in the official code; the
    softmax runs in float32. Returns [B, T, C] with channels ordered (head, dim).
    """
    b, t, c3 = qkv.shape
    width = c3 // 3
    ch = width // num_heads
    qkv = qkv.reshape(b, t, num_heads, 3, ch)
    q, k, v = qkv[..., 0, :], qkv[..., 1, :], qkv[..., 2, :]
    if encoder_kv is not None:
        ekv = encoder_kv.reshape(b, encoder_kv.shape[1], num_heads, 2, ch)
        k = jnp.concatenate([ekv[..., 0, :], k], axis=1)
        v = jnp.concatenate([ekv[..., 1, :], v], axis=1)
    scale = jnp.asarray(ch ** -0.25, q.dtype)
    out = jax.nn.dot_product_attention(q * scale, k * scale, v, scale=1.0)
    return out.reshape(b, t, width)
