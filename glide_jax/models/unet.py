"""The ADM UNet torso shared by GLIDE and PITI (NHWC).

Module names mirror the PyTorch state-dict paths (docs/architecture.md): a TimestepEmbedSequential
is `input_blocks_<i>` with children `layers_<j>`, Sequential members keep their index
(`in_layers_2`, `emb_layers_1`, `out_layers_3`, `time_embed_0`, `out_2`).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import flax.linen as nn
import jax.numpy as jnp

from glide_jax.models.layers import Conv, Dense, GroupNorm, conv, dense, qkv_attention, \
    timestep_embedding

Dtype = Any


def upsample_nearest(x):
    """[B, H, W, C] -> [B, 2H, 2W, C], nearest neighbour."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def avg_pool2(x):
    """[B, H, W, C] -> [B, H/2, W/2, C], 2x2 mean with stride 2."""
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4)).astype(x.dtype)


class ResBlock(nn.Module):
    """Residual block with timestep conditioning, optional 2x up/down resampling.

    x: [B, H, W, Cin] (compute dtype), emb: [B, E] float32 -> [B, H', W', out_channels].
    """
    out_channels: int
    dropout: float = 0.0
    use_scale_shift_norm: bool = True
    up: bool = False
    down: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, emb, train: bool = False):
        cout = self.out_channels
        h = nn.silu(GroupNorm(name="in_layers_0")(x))
        # Resampling sits between the norm/activation and the conv, on both paths.
        if self.up:
            h, x = upsample_nearest(h), upsample_nearest(x)
        elif self.down:
            h, x = avg_pool2(h), avg_pool2(x)
        h = conv(h, cout, 3, "in_layers_2", self.dtype)
        # The embedding projection stays float32 (as in the official fp16 mode).
        emb_out = dense(nn.silu(emb), 2 * cout if self.use_scale_shift_norm else cout,
                        "emb_layers_1", jnp.float32).astype(h.dtype)[:, None, None, :]
        if self.use_scale_shift_norm:
            scale, shift = emb_out[..., :cout], emb_out[..., cout:]
            h = GroupNorm(name="out_layers_0")(h) * (1 + scale) + shift
            h = nn.silu(h)
        else:
            h = nn.silu(GroupNorm(name="out_layers_0")(h + emb_out))
        h = nn.Dropout(self.dropout, name="out_layers_2")(h, deterministic=not train)
        h = conv(h, cout, 3, "out_layers_3", self.dtype, zero_init=True)
        if x.shape[-1] != cout:
            x = conv(x, cout, 1, "skip_connection", self.dtype)
        return x + h


class Upsample(nn.Module):
    """Nearest 2x upsampling with an optional 3x3 conv (only when resblock_updown is False)."""
    use_conv: bool = True
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = upsample_nearest(x)
        return conv(x, x.shape[-1], 3, "conv", self.dtype) if self.use_conv else x


class Downsample(nn.Module):
    """Stride-2 3x3 conv (symmetric pad 1) or 2x2 average pool (only when resblock_updown is False)."""
    use_conv: bool = True
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        if self.use_conv:
            return conv(x, x.shape[-1], 3, "op", self.dtype, stride=2)
        return avg_pool2(x)


class AttentionBlock(nn.Module):
    """Spatial self-attention with the encoder tokens (text / PITI condition) prepended to K/V.

    x: [B, H, W, C]; encoder_out: [B, S, encoder_channels] or None -> [B, H, W, C].
    """
    num_heads: int = 1
    num_head_channels: int = -1
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, encoder_out=None):
        b, hh, ww, c = x.shape
        heads = self.num_heads if self.num_head_channels == -1 else c // self.num_head_channels
        h = GroupNorm(name="norm")(x).reshape(b, hh * ww, c)
        qkv = dense(h, 3 * c, "qkv", self.dtype)
        ekv = None
        if encoder_out is not None:
            ekv = dense(encoder_out.astype(self.dtype), 2 * c, "encoder_kv", self.dtype)
        a = qkv_attention(qkv, heads, ekv)
        a = dense(a, c, "proj_out", self.dtype, zero_init=True)
        return x + a.reshape(b, hh, ww, c)


class TimestepEmbedSequential(nn.Module):
    """Applies its layers in order, giving each the inputs it takes (emb / encoder_out / none)."""
    layers: Sequence[nn.Module]

    def __call__(self, x, emb, encoder_out=None, train: bool = False):
        for layer in self.layers:
            if isinstance(layer, ResBlock):
                x = layer(x, emb, train)
            elif isinstance(layer, AttentionBlock):
                x = layer(x, encoder_out)
            else:
                x = layer(x)
        return x


# Arguments of __call__ counted with self: (self, x, emb, encoder_out, train).
_RematSequential = nn.remat(TimestepEmbedSequential, static_argnums=(4,))


class UNetModel(nn.Module):
    """The ADM UNet; subclasses add the conditioning (GLIDE text, PITI encoder).

    `attention_ds` are downsample factors (image_size // pixel resolution). Parameters live at
    the root of the module, so subclasses share the official flat key layout.
    """
    in_channels: int = 3
    model_channels: int = 192
    out_channels: int = 6
    num_res_blocks: int = 3
    attention_ds: Tuple[int, ...] = (2, 4, 8)
    dropout: float = 0.0
    channel_mult: Tuple[int, ...] = (1, 2, 3, 4)
    conv_resample: bool = True
    num_heads: int = 1
    num_head_channels: int = 64
    num_heads_upsample: int = -1
    use_scale_shift_norm: bool = True
    resblock_updown: bool = True
    encoder_channels: Optional[int] = None
    use_checkpoint: bool = False
    dtype: Dtype = jnp.float32

    def _res(self, out_channels, up=False, down=False):
        return ResBlock(out_channels, self.dropout, self.use_scale_shift_norm, up=up, down=down,
                        dtype=self.dtype)

    def _attn(self, heads):
        return AttentionBlock(heads, self.num_head_channels, dtype=self.dtype)

    def setup(self):
        mc = self.model_channels
        seq = _RematSequential if self.use_checkpoint else TimestepEmbedSequential
        heads_up = self.num_heads if self.num_heads_upsample == -1 else self.num_heads_upsample
        self.time_embed_0 = Dense(4 * mc, mc, jnp.float32)
        self.time_embed_2 = Dense(4 * mc, 4 * mc, jnp.float32)

        ch = int(self.channel_mult[0] * mc)
        input_ch = ch
        inputs = [seq([Conv(ch, self.in_channels, 3, self.dtype)])]
        ds = 1
        for level, mult in enumerate(self.channel_mult):
            for _ in range(self.num_res_blocks):
                layers = [self._res(int(mult * mc))]
                ch = int(mult * mc)
                if ds in self.attention_ds:
                    layers.append(self._attn(self.num_heads))
                inputs.append(seq(layers))
            if level != len(self.channel_mult) - 1:
                down = (self._res(ch, down=True) if self.resblock_updown
                        else Downsample(self.conv_resample, self.dtype))
                inputs.append(seq([down]))
                ds *= 2
        self.input_blocks = inputs
        self.middle_block = seq([self._res(ch), self._attn(self.num_heads), self._res(ch)])

        outputs = []
        for level, mult in list(enumerate(self.channel_mult))[::-1]:
            for i in range(self.num_res_blocks + 1):
                layers = [self._res(int(mc * mult))]
                ch = int(mc * mult)
                if ds in self.attention_ds:
                    layers.append(self._attn(heads_up))
                if level and i == self.num_res_blocks:
                    layers.append(self._res(ch, up=True) if self.resblock_updown
                                  else Upsample(self.conv_resample, self.dtype))
                    ds //= 2
                outputs.append(seq(layers))
        self.output_blocks = outputs
        self.out_0 = GroupNorm()
        self.out_2 = Conv(self.out_channels, input_ch, 3, jnp.float32, zero_init=True)

    def time_embedding(self, timesteps):
        """timesteps [B] float -> emb [B, 4*model_channels] float32."""
        emb = timestep_embedding(timesteps, self.model_channels)
        return self.time_embed_2(nn.silu(self.time_embed_0(emb)))

    def level_starts(self) -> Tuple[Tuple[int, int, int], ...]:
        """(input block index, downsample factor, channels) of the block that opens each
        resolution level: the input conv, then the first block after each downsampling."""
        starts, index, ds = [(0, 1, int(self.channel_mult[0] * self.model_channels))], 0, 1
        for level, mult in enumerate(self.channel_mult):
            index += self.num_res_blocks
            if level != len(self.channel_mult) - 1:
                index, ds = index + 1, ds * 2
                ch = int(mult * self.model_channels)
                starts.append((index, ds, ch))
        return tuple(starts)

    def torso(self, h, emb, encoder_out=None, train: bool = False, input_residuals=None):
        """UNet body and head: h [B, H, W, in_channels], emb [B, 4mc] f32,
        encoder_out [B, S, encoder_channels] or None -> [B, H, W, out_channels] float32.

        `input_residuals` {input block index: [B, h, w, channels]}, when given, are added to
        those input blocks' outputs (before their skips are kept); None leaves the official
        forward."""
        h = h.astype(self.dtype)
        skips = []
        for i, block in enumerate(self.input_blocks):
            h = block(h, emb, encoder_out, train)
            if input_residuals and i in input_residuals:
                h = h + input_residuals[i].astype(h.dtype)
            skips.append(h)
        h = self.middle_block(h, emb, encoder_out, train)
        for block in self.output_blocks:
            # [current, skip] order: the following GroupNorm's groups depend on it.
            h = jnp.concatenate([h, skips.pop()], axis=-1)
            h = block(h, emb, encoder_out, train)
        h = h.astype(jnp.float32)
        return self.out_2(nn.silu(self.out_0(h)))

    def __call__(self, x, timesteps, train: bool = False):
        """Unconditional UNet: x [B, H, W, in_channels], timesteps [B] -> [B, H, W, out]."""
        return self.torso(x, self.time_embedding(timesteps), None, train)
