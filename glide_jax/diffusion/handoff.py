"""Two-stage hand-off: base 64x64 sample -> 8-bit low-res input of the upsampler."""
from __future__ import annotations

import jax.numpy as jnp

# Initial-noise temperature of the GLIDE and PITI upsamplers (pass as `temperature=`).
UPSAMPLE_TEMPERATURE = 0.997


def quantize_low_res(x, mode: str = "round"):
    """Clip to [-1, 1] and quantize to 8 bits, staying in [-1, 1].

    mode "round" (GLIDE notebooks): round((x + 1) * 127.5) / 127.5 - 1, half to even;
    "truncate" (PITI image_sample.py): floor(127.5 * (x + 1)) / 127.5 - 1.
    x: [B,H,W,C] float; returns float32 of the same shape.
    """
    x = jnp.clip(jnp.asarray(x, jnp.float32), -1.0, 1.0)
    if mode == "round":
        levels = jnp.round((x + 1) * 127.5)
    elif mode == "truncate":
        levels = jnp.floor(127.5 * (x + 1))
    else:
        raise ValueError(f"quantization mode must be 'round' (GLIDE) or 'truncate' (PITI), "
                         f"got {mode!r}")
    return levels / 127.5 - 1
