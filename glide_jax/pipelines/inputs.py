"""Reading conditions, prompts and images from files; validating arrays; writing PNGs.

Conditions are read the way users have them and turned into PITI's model input
(`ref` [256, 256, C] float32 in [-1, 1], PITI `image_datasets_mask.py`, `image_datasets_sketch.py`, `image_datasets_depth.py`):

* masks (`coco`, `ade20k`): an RGB colour map in PITI's format, or a COCO-Stuff label map
  (single-channel or palette PNG with class ids 0..181 and 255 = unlabeled), colourised on the fly;
* sketches (`coco-edge`, `flickr-edge`): white strokes on black (PITI's format) or black on white
  (what people draw), detected from the mean brightness or forced, binarised, then turned into the
  L1 distance map;
* `depth-normal`: a (normal, depth) pair of RGB renderings.

Every condition is squashed to 256x256 with nearest-neighbour resizing (aspect ratio not kept), as
PITI's loaders do.
"""
from __future__ import annotations

import glob as _glob
import os
from typing import Sequence

import numpy as np
from PIL import Image

from glide_jax.data import conditions as _conditions
from glide_jax.modes import CONDITION_SIZE, check_condition_shape, condition_channels

MASK_MODES = ("coco", "ade20k")
SKETCH_MODES = ("coco-edge", "flickr-edge")
DEPTH_MODES = ("depth-normal",)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
_COCO_STUFF_MAX_LABEL = _conditions.NUM_COCO_STUFF_CLASSES - 1
_UNLABELED = _conditions.UNLABELED


def _open(path) -> Image.Image:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"condition file not found: {path}")
    try:
        image = Image.open(path)
        image.load()
    except OSError as e:
        raise ValueError(f"cannot read {path} as an image: {e}") from e
    return image


def _resize_nearest(array: np.ndarray) -> np.ndarray:
    return _conditions.resize_condition(array, CONDITION_SIZE)


def _to_unit_range(array: np.ndarray) -> np.ndarray:
    return _conditions.to_unit_range(array)


def is_label_map(image: Image.Image) -> bool:
    """True for single-channel or palette images (COCO-Stuff label maps); RGB(A) are colour maps."""
    return image.mode in ("L", "P", "I", "I;16", "I;16B", "I;16L")


def read_mask(path, mask_format: str = "auto") -> np.ndarray:
    """A segmentation condition -> [256, 256, 3] float32 in [-1, 1].

    mask_format: "auto" (label map if the file is single-channel or a palette image, else colour),
    "color" (PITI's RGB colour map, used as is) or "labels" (COCO-Stuff class ids 0..181, 255 =
    unlabeled, colourised with the COCO-Stuff palette of PITI's preprocess_mask.py).
    """
    if mask_format not in ("auto", "color", "labels"):
        raise ValueError(f"mask_format must be 'auto', 'color' or 'labels', got {mask_format!r}")
    image = _open(path)
    labels = is_label_map(image) if mask_format == "auto" else mask_format == "labels"
    if labels:
        if image.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
            raise ValueError(f"{path}: a label map must be single-channel or a palette image, "
                             f"got mode {image.mode}")
        ids = np.asarray(image).astype(np.int64)
        bad = (ids > _COCO_STUFF_MAX_LABEL) & (ids != _UNLABELED) | (ids < 0)
        if bad.any():
            raise ValueError(
                f"{path}: label map values must be COCO-Stuff class ids 0..{_COCO_STUFF_MAX_LABEL} or "
                f"{_UNLABELED} (unlabeled), found {sorted(set(np.unique(ids[bad]).tolist()))[:8]}; "
                "if it is a grayscale colour map, pass mask_format='color'")
        rgb = _conditions.colorize_labels(ids.astype(np.uint8))
    else:
        rgb = np.asarray(image.convert("RGB"))
    return _to_unit_range(_resize_nearest(np.ascontiguousarray(rgb, np.uint8)))


def sketch_polarity(gray: np.ndarray) -> str:
    """'black_on_white' if the mean brightness is above mid-grey, else 'white_on_black'."""
    return "black_on_white" if float(gray.mean()) > 127.5 else "white_on_black"


def read_sketch(path, polarity: str = "auto", threshold: int = 128) -> np.ndarray:
    """A sketch -> L1 distance map [256, 256, 1] float32 in [-1, 1] (-1 on strokes).

    polarity: "auto" (from the mean brightness: sketches are mostly background), "white_on_black"
    (PITI's HED sketches) or "black_on_white" (inverted first). The sketch is binarised at
    `threshold` before resizing, because the distance transform only counts pixels that are exactly
    255 (anti-aliased strokes would otherwise mostly vanish, PITI `image_datasets_sketch.py`); binary inputs are unchanged.
    """
    if polarity not in ("auto", "white_on_black", "black_on_white"):
        raise ValueError("sketch polarity must be 'auto', 'white_on_black' or 'black_on_white', "
                         f"got {polarity!r}")
    gray = np.asarray(_open(path).convert("L"))
    if polarity == "auto":
        polarity = sketch_polarity(gray)
    if polarity == "black_on_white":
        gray = 255 - gray
    binary = np.where(gray >= threshold, 255, 0).astype(np.uint8)
    distance = _conditions.sketch_distance_map(_resize_nearest(binary))
    return _to_unit_range(np.asarray(distance, np.uint8))[..., None]


def read_depth_normal(normal_path, depth_path) -> np.ndarray:
    """(normal, depth) RGB renderings -> [256, 256, 6] float32 in [-1, 1], ordered [normal, depth]."""
    normal = np.asarray(_open(normal_path).convert("RGB"))
    depth = np.asarray(_open(depth_path).convert("RGB"))
    return np.concatenate([_to_unit_range(_resize_nearest(normal)),
                           _to_unit_range(_resize_nearest(depth))], axis=-1)


def read_condition(path, mode: str, *, mask_format: str = "auto", sketch_polarity: str = "auto"):
    """One condition file (a (normal, depth) pair for depth-normal) -> [256, 256, C] in [-1, 1]."""
    condition_channels(mode)
    if mode in MASK_MODES:
        return read_mask(path, mask_format)
    if mode in SKETCH_MODES:
        return read_sketch(path, sketch_polarity)
    if isinstance(path, (str, os.PathLike)):
        raise ValueError("depth-normal needs a (normal_path, depth_path) pair, got one path")
    return read_depth_normal(*path)


def validate_condition(ref, mode: str) -> np.ndarray:
    """Checks a condition batch and returns it as float32 numpy.

    ref: [B, 256, 256, C] float in [-1, 1] with C = condition_channels(mode).
    """
    channels = condition_channels(mode)
    ref = np.asarray(ref)
    check_condition_shape(ref.shape, channels, f"mode {mode!r}")
    return validate_unit_range(ref, "condition")


def validate_unit_range(x, name: str, tolerance: float = 1e-3) -> np.ndarray:
    """float array in [-1, 1] -> float32 numpy; uint8 or out-of-range values raise."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be float in [-1, 1], got dtype {x.dtype} "
                         "(uint8 images: x / 127.5 - 1)")
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf")
    if x.size and (x.min() < -1 - tolerance or x.max() > 1 + tolerance):
        raise ValueError(f"{name} values must be in [-1, 1], got [{x.min():.3g}, {x.max():.3g}]")
    return x.astype(np.float32)


def read_image(path, size: int) -> np.ndarray:
    """An RGB photo -> [size, size, 3] float32 in [-1, 1] (bicubic, as GLIDE's inpainting notebook)."""
    return _to_unit_range(_conditions.resize_photo(np.asarray(_open(path).convert("RGB")), size))


def read_inpaint_mask(path, size: int) -> np.ndarray:
    """A mask image -> [size, size, 1] float32, 1 = known pixel (white), 0 = to fill (black)."""
    gray = np.asarray(_open(path).convert("L").resize((size, size), Image.NEAREST))
    return (gray >= 128).astype(np.float32)[..., None]


def read_prompts(prompts: str = "", prompts_file: str = "") -> list[str]:
    """Prompts separated by '|' in `prompts`, plus one per non-empty line of `prompts_file`."""
    out = [p.strip() for p in prompts.split("|") if p.strip()] if prompts else []
    if prompts_file:
        with open(prompts_file, encoding="utf-8") as f:
            out += [line.strip() for line in f if line.strip()]
    return out


def expand_inputs(patterns: str | Sequence[str]) -> list[str]:
    """Comma-separated globs (or a list of them) -> sorted unique image paths; none found raises."""
    if isinstance(patterns, str):
        patterns = [p for p in patterns.split(",") if p.strip()]
    paths = set()
    for pattern in patterns:
        pattern = os.path.expanduser(pattern.strip())
        if os.path.isdir(pattern):
            pattern = os.path.join(pattern, "*")
        paths.update(p for p in _glob.glob(pattern, recursive=True)
                     if os.path.isfile(p) and p.lower().endswith(IMAGE_SUFFIXES))
    if not paths:
        raise FileNotFoundError(f"no image files match {list(patterns)}")
    return sorted(paths)
