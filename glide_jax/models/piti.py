"""PITI models: the task encoder (condition CNN + transformer) and the GLIDE UNet decoder."""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from glide_jax.models.glide import model_input
from glide_jax.models.layers import Dense, GroupNorm, LayerNorm, conv
from glide_jax.models.text import Transformer
from glide_jax.models.unet import UNetModel
from glide_jax.modes import CONDITION_SIZE, check_condition_shape

ENCODER_WIDTH = 512
ENCODER_LAYERS = 8
ENCODER_HEADS = 8


def check_condition(ref, n_class: int, mode: str = ""):
    """Raise a ValueError naming the problem unless ref is [B, 256, 256, n_class]."""
    check_condition_shape(ref.shape, n_class, f"mode {mode!r}" if mode else f"n_class {n_class}")


class CNN(nn.Module):
    """PITI's condition CNN: [B, 256, 256, n_class] -> [B, 16, 16, width].

    conv1 7x7 (pad 3), conv2..5 3x3 stride 2 (pad 1), each followed by affine InstanceNorm
    (float32, eps 1e-5) and LeakyReLU(0.2); conv6 3x3 without norm or activation. Channels are
    (w/16, w/8, w/4, w/2, w, w): the official 32, 64, 128, 256, 512, 512 at width 512.
    """
    dtype: Any = jnp.float32
    width: int = ENCODER_WIDTH

    @nn.compact
    def __call__(self, x):
        x = x.astype(self.dtype)
        w = self.width
        plan = ((w // 16, 7, 1), (w // 8, 3, 2), (w // 4, 3, 2), (w // 2, 3, 2), (w, 3, 2))
        for i, (features, kernel, stride) in enumerate(plan, start=1):
            x = conv(x, features, kernel, f"conv{i}", self.dtype, stride=stride)
            x = nn.leaky_relu(GroupNorm(num_groups=None, name=f"norm{i}")(x), 0.2)
        return conv(x, w, 3, "conv6", self.dtype)


class TaskEncoder(nn.Module):
    """PITI's Encoder: CNN tokens + transformer, giving (xf_proj [B,w], xf_out [B,256,w]).

    `width` / `layers` / `heads` are the official 512 / 8 / 8 by default; smaller values are only
    for demos and tests (the options `encoder_width`, `encoder_layers`, `encoder_heads`).

    The cls token is appended AFTER the 256 grid tokens (token index y*16 + x) but takes
    positional row 0; rows 1..256 go to the grid tokens. Init: the official code leaves
    `cls_token` [1,1,512] and `positional_embedding` [1,257,512] uninitialised (torch.empty); here
    they are deterministic: cls_token zeros, positional_embedding N(0, 0.02^2).
    """
    n_class: int = 3
    mode: str = ""
    use_checkpoint: bool = False
    dtype: Any = jnp.float32
    width: int = ENCODER_WIDTH
    layers: int = ENCODER_LAYERS
    heads: int = ENCODER_HEADS

    @nn.compact
    def __call__(self, ref):
        """ref [B, 256, 256, n_class] in [-1, 1] -> (xf_proj [B, w], xf_out [B, 256, w]),
        both float32 (w = width, 512 officially)."""
        check_condition(ref, self.n_class, self.mode)
        w = self.width
        cls_token = self.param("cls_token", nn.initializers.zeros, (1, 1, w), jnp.float32)
        pos = self.param("positional_embedding", nn.initializers.normal(0.02),
                         (1, CONDITION_SIZE + 1, w), jnp.float32)
        x = CNN(self.dtype, w, name="cnn")(ref)
        b = x.shape[0]
        x = x.reshape(b, -1, w).astype(jnp.float32) + pos[:, 1:]
        cls = jnp.broadcast_to(cls_token + pos[:, :1], (b, 1, w))
        x = jnp.concatenate([x, cls], axis=1)
        x = Transformer(self.layers, self.heads, self.use_checkpoint, self.dtype,
                        name="transformer")(x)
        x = LayerNorm(name="final_ln")(x).astype(jnp.float32)
        return x[:, -1], x[:, :-1]


class PITIDecoder(UNetModel):
    """GLIDE UNet conditioned on the encoder: emb += transformer_proj(xf_proj) and xf_out in
    every attention block (encoder_channels = the encoder width, officially 512).

    `spatial` (option `encoder_spatial`, a glide_jax departure that no official checkpoint has):
    the encoder's 16x16 token grid also enters the UNet where it is: at the block that opens
    each resolution level, the grid resized to that resolution goes through a zero-initialised
    projection (`spatial_proj_<level>`, so the decoder starts as the official one) and is added to
    the block's output. PITI routes a mask's layout through cross-attention only, which a
    position-blind pretrained UNet learns slowly; this is the direct path.
    """
    super_res: bool = False
    spatial: bool = False

    def setup(self):
        super().setup()
        self.transformer_proj = Dense(4 * self.model_channels, self.encoder_channels,
                                      jnp.float32)
        if self.spatial:
            self.spatial_proj = [Dense(ch, self.encoder_channels, jnp.float32, zero_init=True)
                                 for _, _, ch in self.level_starts()]

    def _spatial_residuals(self, xf_out, height: int, width: int) -> dict:
        b, n, w = xf_out.shape
        side = int(round(n ** 0.5))
        grid = xf_out.reshape(b, side, side, w)
        out = {}
        for (index, ds, _), proj in zip(self.level_starts(), self.spatial_proj):
            size = (b, height // ds, width // ds, w)
            resized = jax.image.resize(grid, size, "linear", antialias=True)
            out[index] = proj(resized)
        return out

    def __call__(self, x_t, timesteps, xf_proj, xf_out, low_res=None, train: bool = False):
        h = model_input(x_t, low_res, super_res=self.super_res)
        emb = self.time_embedding(timesteps) + self.transformer_proj(xf_proj)
        residuals = (self._spatial_residuals(xf_out, h.shape[1], h.shape[2]) if self.spatial
                     else None)
        return self.torso(h, emb, xf_out, train, residuals)


class PITIModel(nn.Module):
    """PITI Text2ImModel (base) or SuperResText2ImModel (decoder.super_res): encoder + decoder.

    Call: x_t [B, H, W, 3], timesteps [B] float, ref [B, 256, 256, n_class], low_res
    [B, h, w, 3] for the upsampler -> [B, H, W, out_channels] float32.
    """
    encoder: TaskEncoder
    decoder: PITIDecoder

    def __call__(self, x_t, timesteps, ref=None, low_res=None, train: bool = False):
        if ref is None:
            raise ValueError(f"PITI models need ref [B, 256, 256, {self.encoder.n_class}], got None")
        xf_proj, xf_out = self.encoder(ref)
        return self.decoder(x_t, timesteps, xf_proj, xf_out, low_res, train)

    def encode(self, ref):
        """ref [B, 256, 256, n_class] -> (xf_proj [B, w], xf_out [B, 256, w]) float32."""
        return self.encoder(ref)


class PITISuperResModel(PITIModel):
    """PITI SuperResText2ImModel: its own encoder, and a decoder built with super_res=True
    (6 input channels: [x_t, bilinear(low_res)]); `low_res` is required."""
