"""PITI's condition modes: channels per mode, the condition size, the null condition, checks.

One table that models, data and pipelines all read (PITI `script_util.create_model` maps mode
-> n_class; the encoder's 257 positional rows fix the condition at 256x256).
"""
from __future__ import annotations

import numpy as np

# Condition channels per PITI mode: colour masks 3, sketches 1 (distance map), normal + depth 6.
MODE_CHANNELS = {"coco": 3, "ade20k": 3, "coco-edge": 1, "flickr-edge": 1, "depth-normal": 6}
MODES = tuple(MODE_CHANNELS)
CONDITION_SIZE = 256


def condition_channels(mode: str) -> int:
    """Number of condition channels of a PITI `mode`; ValueError naming the known modes."""
    if mode not in MODE_CHANNELS:
        raise ValueError(f"unknown PITI mode {mode!r}; expected one of {sorted(MODE_CHANNELS)}")
    return MODE_CHANNELS[mode]


def null_condition(ref):
    """PITI's null condition: ones shaped like `ref` ([B, 256, 256, C], in [-1, 1] space).

    Used for condition dropout in training and as the unconditional half of classifier-free
    guidance. numpy in, numpy out (host data pipelines); jax otherwise.
    """
    if isinstance(ref, np.ndarray):
        return np.ones_like(ref)
    import jax.numpy as jnp
    return jnp.ones_like(ref)


def check_condition_shape(shape, channels: int, what: str = "") -> None:
    """ValueError naming the problem unless `shape` is [B, 256, 256, channels]."""
    shape = tuple(shape)
    what = what or f"{channels} channel(s)"
    if len(shape) == 3:
        raise ValueError(f"condition must be batched [B, 256, 256, {channels}] for {what}, got "
                         f"shape {shape}; add a leading batch axis")
    if len(shape) != 4:
        raise ValueError(f"condition must be [B, 256, 256, {channels}] (NHWC) for {what}, got "
                         f"shape {shape}")
    if shape[1:3] != (CONDITION_SIZE, CONDITION_SIZE):
        raise ValueError(f"PITI condition must be 256x256, got {shape[1]}x{shape[2]} (shape "
                         f"{shape}; the encoder's 257 positional rows need a 16x16 grid; files "
                         "read with pipelines.read_condition are resized)")
    if shape[3] != channels:
        raise ValueError(f"PITI condition for {what} must have {channels} channels, got "
                         f"{shape[3]} (shape {shape})")
