"""Image arrays for people: [-1, 1] floats to uint8, nearest resizing, grids, PNG files.

Shared by the training grids and the sampling pipelines (neither imports the other).
"""
from __future__ import annotations

import io
import os

import numpy as np

MIN_TILE = 96  # grid tiles smaller than this are enlarged (nearest, integer factor)


def to_uint8(x, rounding: str = "round") -> np.ndarray:
    """[..., C] float in [-1, 1] -> uint8.

    rounding: "round" = clamp(round((x + 1) * 127.5)) (GLIDE's notebooks, PITI image_sample.py's
    save_image) or "trunc" = trunc((x + 1) * 127.5) (PITI's gradio inference.py).
    """
    x = (np.asarray(x, np.float32) + 1.0) * 127.5
    if rounding == "round":
        x = np.floor(x + 0.5)
    elif rounding != "trunc":
        raise ValueError(f"rounding must be 'round' or 'trunc', got {rounding!r}")
    return np.clip(x, 0, 255).astype(np.uint8)


def resize_nearest(images: np.ndarray, size: int) -> np.ndarray:
    """[B, H, W, C] -> [B, size, size, C], nearest neighbour (source pixel floor(i * H / size))."""
    images = np.asarray(images)
    h, w = images.shape[1:3]
    if (h, w) == (size, size):
        return images
    rows = (np.arange(size) * h // size).astype(int)
    cols = (np.arange(size) * w // size).astype(int)
    return images[:, rows][:, :, cols]


def make_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """[N, H, W, C] -> one [rows*(H+pad)+pad, cols*(W+pad)+pad, C] grid (black padding)."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    grid = np.zeros((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), images.dtype)
    for i, image in enumerate(images):
        r, q = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        grid[top:top + h, left:left + w] = image
    return grid


def enlarge(image: np.ndarray, tile: int, min_tile: int = MIN_TILE) -> np.ndarray:
    """[H, W, C] grid of `tile`-pixel tiles, enlarged by an integer factor so tiles are at least
    `min_tile` pixels (nearest; unchanged when they already are)."""
    scale = max(1, min_tile // max(1, int(tile)))
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1) if scale > 1 else image


def png_bytes(image: np.ndarray) -> bytes:
    """[H, W, 3] or [H, W, 1] uint8 -> PNG file bytes."""
    from PIL import Image
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"PNG images must be uint8, got {image.dtype} (use to_uint8)")
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(path, image: np.ndarray) -> None:
    """Writes [H, W, 3] (or [H, W, 1]) uint8 as PNG, creating the folder; any etils path
    (local or gs://)."""
    data = png_bytes(image)
    path_str = os.fspath(path)
    if "://" in path_str:
        from etils import epath
        target = epath.Path(path_str)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return
    os.makedirs(os.path.dirname(path_str) or ".", exist_ok=True)
    with open(path_str, "wb") as f:
        f.write(data)


def condition_sample_truth_grid(samples, truth=None, condition=None) -> np.ndarray:
    """One row per example: condition | sample | truth (each uint8 [N, R, R, 3], the condition
    resized to R, blank where missing), as one grid enlarged to readable tiles."""
    samples = to_uint8(samples)
    size = samples.shape[1]
    blank = np.zeros_like(samples)
    cond = blank if condition is None else to_uint8(resize_nearest(condition, size))
    if cond.shape[-1] == 1:
        cond = np.repeat(cond, 3, axis=-1)
    truth = blank if truth is None else to_uint8(truth)
    rows = np.stack([cond, samples, truth], axis=1).reshape((-1,) + samples.shape[1:])
    return enlarge(make_grid(rows, ncols=3), size)
