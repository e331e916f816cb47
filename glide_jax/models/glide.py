"""GLIDE text-conditional UNets: base, super-resolution, inpainting and both (NHWC)."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from glide_jax.models.layers import Dense, LayerNorm
from glide_jax.models.text import Transformer
from glide_jax.models.unet import UNetModel


def upsample_bilinear(low_res, size):
    """Bilinear resize [B, h, w, C] -> [B, H, W, C] with half-pixel centres, float32.

    When upsampling this equals PyTorch's F.interpolate(mode="bilinear", align_corners=False)
    (the antialiasing of jax.image.resize only acts when downsampling).
    """
    low_res = jnp.asarray(low_res, jnp.float32)
    return jax.image.resize(low_res, (low_res.shape[0], size[0], size[1], low_res.shape[-1]),
                            "linear")


def model_input(x_t, low_res=None, inpaint_image=None, inpaint_mask=None, *, inpaint=False,
                super_res=False):
    """The official channel concatenation order: [x_t, image*mask, mask, up(low_res)] (float32).

    Missing inpainting inputs are zeros, as in the official code; a super-resolution model
    requires `low_res`.
    """
    x_t = jnp.asarray(x_t, jnp.float32)
    parts = [x_t]
    if inpaint:
        b, h, w, _ = x_t.shape
        image = (jnp.zeros((b, h, w, 3), jnp.float32) if inpaint_image is None
                 else jnp.asarray(inpaint_image, jnp.float32))
        mask = (jnp.zeros((b, h, w, 1), jnp.float32) if inpaint_mask is None
                else jnp.asarray(inpaint_mask, jnp.float32))
        parts += [image * mask, mask]
    if super_res:
        if low_res is None:
            raise ValueError("super-resolution model needs low_res [B, h, w, 3], got None")
        parts.append(upsample_bilinear(low_res, x_t.shape[1:3]))
    return jnp.concatenate(parts, axis=-1) if len(parts) > 1 else x_t


class Text2ImUNet(UNetModel):
    """GLIDE's Text2ImUNet (and, by flags, its super-res / inpainting variants).

    Init of parameters the official code leaves uninitialised (`torch.empty`): the text
    `positional_embedding` and `padding_embedding` are drawn N(0, 0.01^2) here; `token_embedding`
    is N(0, 1) as nn.Embedding.
    """
    text_ctx: int = 128
    xf_width: int = 512
    xf_layers: int = 16
    xf_heads: int = 8
    xf_final_ln: bool = True
    xf_padding: bool = True
    n_vocab: int = 50257
    inpaint: bool = False
    super_res: bool = False

    def setup(self):
        super().setup()
        self.transformer = Transformer(self.xf_layers, self.xf_heads, self.use_checkpoint,
                                       self.dtype)
        if self.xf_final_ln:
            self.final_ln = LayerNorm()
        self.token_embedding = nn.Embed(self.n_vocab, self.xf_width,
                                        embedding_init=nn.initializers.normal(1.0),
                                        dtype=jnp.float32, param_dtype=jnp.float32)
        self.positional_embedding = self.param(
            "positional_embedding", nn.initializers.normal(0.01), (self.text_ctx, self.xf_width),
            jnp.float32)
        if self.xf_padding:
            self.padding_embedding = self.param(
                "padding_embedding", nn.initializers.normal(0.01),
                (self.text_ctx, self.xf_width), jnp.float32)
        self.transformer_proj = Dense(4 * self.model_channels, self.xf_width, jnp.float32)

    def get_text_emb(self, tokens, mask=None):
        """tokens [B, text_ctx] int, mask [B, text_ctx] bool (True = real token) ->
        (xf_proj [B, 4*model_channels] float32, xf_out [B, text_ctx, xf_width] float32).

        Padded positions are replaced (not added to) by `padding_embedding`; xf_proj is taken at
        the LAST position, whatever the prompt length.
        """
        if tokens is None:
            raise ValueError(
                "GLIDE text models need tokens [B, text_ctx]; for the unconditional prompt pass "
                "the all-padding tokens (end token everywhere) with an all-False mask")
        if tokens.shape[-1] != self.text_ctx:
            raise ValueError(f"tokens must be [B, {self.text_ctx}], got {tuple(tokens.shape)}")
        xf_in = self.token_embedding(tokens) + self.positional_embedding[None]
        if self.xf_padding:
            if mask is None:
                raise ValueError("mask [B, text_ctx] bool is required when xf_padding is True")
            xf_in = jnp.where(jnp.asarray(mask, bool)[..., None], xf_in,
                              self.padding_embedding[None])
        xf_out = self.transformer(xf_in)
        if self.xf_final_ln:
            xf_out = self.final_ln(xf_out)
        xf_out = xf_out.astype(jnp.float32)
        return self.transformer_proj(xf_out[:, -1]), xf_out

    def __call__(self, x_t, timesteps, tokens=None, mask=None, low_res=None, inpaint_image=None,
                 inpaint_mask=None, train: bool = False):
        """x_t [B, H, W, 3], timesteps [B] float -> [B, H, W, out_channels] float32."""
        h = model_input(x_t, low_res, inpaint_image, inpaint_mask, inpaint=self.inpaint,
                        super_res=self.super_res)
        xf_proj, xf_out = self.get_text_emb(tokens, mask)
        emb = self.time_embedding(timesteps) + xf_proj
        return self.torso(h, emb, xf_out, train)


class SuperResText2ImUNet(Text2ImUNet):
    """Input [x_t, up(low_res)] (6 channels)."""
    in_channels: int = 6
    super_res: bool = True


class InpaintText2ImUNet(Text2ImUNet):
    """Input [x_t, inpaint_image*inpaint_mask, inpaint_mask] (7 channels)."""
    in_channels: int = 7
    inpaint: bool = True


class SuperResInpaintText2ImUNet(Text2ImUNet):
    """Input [x_t, inpaint_image*inpaint_mask, inpaint_mask, up(low_res)] (10 channels)."""
    in_channels: int = 10
    inpaint: bool = True
    super_res: bool = True
