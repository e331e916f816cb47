"""The xf transformer of GLIDE's text encoder and PITI's task encoder (pre-LN, no mask)."""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from glide_jax.models.layers import LayerNorm, dense, gelu, qkv_attention

Dtype = Any


class MultiheadAttention(nn.Module):
    """Bidirectional self-attention with a packed head-major `c_qkv` and output `c_proj`."""
    heads: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        width = x.shape[-1]
        qkv = dense(x, 3 * width, "c_qkv", self.dtype)
        return dense(qkv_attention(qkv, self.heads), width, "c_proj", self.dtype)


class MLP(nn.Module):
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        width = x.shape[-1]
        h = gelu(dense(x, 4 * width, "c_fc", self.dtype))
        return dense(h, width, "c_proj", self.dtype)


class ResidualAttentionBlock(nn.Module):
    """x <- x + attn(ln_1(x)); x <- x + mlp(ln_2(x)). x: [B, T, W]."""
    heads: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = x + MultiheadAttention(self.heads, self.dtype, name="attn")(LayerNorm(name="ln_1")(x))
        return x + MLP(self.dtype, name="mlp")(LayerNorm(name="ln_2")(x))


class Transformer(nn.Module):
    """`layers` residual attention blocks named resblocks_<i>. x: [B, T, W] -> [B, T, W]."""
    layers: int
    heads: int
    use_checkpoint: bool = False
    dtype: Dtype = jnp.float32

    def setup(self):
        block = nn.remat(ResidualAttentionBlock) if self.use_checkpoint else ResidualAttentionBlock
        self.resblocks = [block(self.heads, self.dtype) for _ in range(self.layers)]

    def __call__(self, x):
        x = x.astype(self.dtype)
        for block in self.resblocks:
            x = block(x)
        return x
