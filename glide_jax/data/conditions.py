"""PITI's conditions and geometric transforms, in NumPy (host side).

Everything here works on uint8 HWC arrays and mirrors PITI's loaders and preprocessing scripts
(PITI `preprocess/` and `pretrained_diffusion/image_datasets_*.py`): the COCO-Stuff palette, the sketch distance map, the DIODE depth/normal renderings, the
256x256 squash resize (bicubic for photos, nearest for conditions) and the [-1, 1] scaling.
"""
import cv2
import numpy as np
from PIL import Image

NUM_COCO_STUFF_CLASSES = 182
UNLABELED = 255


def _bit_interleaved_palette(num_classes):
    """Colour of class i: the bits of id = i + 1 spread over R, G, B from the high bit down."""
    palette = np.zeros((num_classes, 3), np.uint8)
    for i in range(num_classes):
        cid, rgb = i + 1, [0, 0, 0]
        for j in range(7):
            for channel in range(3):
                rgb[channel] |= ((cid >> channel) & 1) << (7 - j)
            cid >>= 3
        palette[i] = rgb
    return palette


COCO_STUFF_PALETTE = _bit_interleaved_palette(NUM_COCO_STUFF_CLASSES)
# Lookup table over all uint8 ids: ids outside 0..181 (255 = unlabeled) are black.
_PALETTE_LUT = np.zeros((256, 3), np.uint8)
_PALETTE_LUT[:NUM_COCO_STUFF_CLASSES] = COCO_STUFF_PALETTE


def colorize_labels(labels):
    """Class-id map -> PITI's colour map (preprocess_mask.py).

    labels: [H, W] or [H, W, 1] uint8 class ids (0..181, 255 unlabeled). Returns [H, W, 3] uint8.
    """
    labels = np.asarray(labels)
    if labels.ndim == 3:
        labels = labels[..., 0]
    return _PALETTE_LUT[labels.astype(np.uint8)]


def sketch_distance_map(sketch):
    """PITI's sketch condition: L1 distance of each pixel to the nearest stroke pixel (value 255).

    sketch: [H, W] or [H, W, 1] uint8, white strokes on black. Returns [H, W] uint8 distances
    clipped to 255 (OpenCV DIST_L1 with a 3x3 mask is exact for the city-block metric). A sketch
    without any stroke gives 255 everywhere.
    """
    sketch = np.asarray(sketch)
    if sketch.ndim == 3:
        sketch = sketch[..., 0]
    if not np.any(sketch == 255):
        return np.full(sketch.shape, 255, np.uint8)
    dist = cv2.distanceTransform(255 - sketch.astype(np.uint8), cv2.DIST_L1, 3)
    return np.clip(dist, 0, 255).astype(np.uint8)


def _jet_lut(n=256):
    """matplotlib's `jet` colormap sampled at n points (RGB float in [0, 1])."""
    segments = {
        "r": ((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),
        "g": ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),
        "b": ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)),
    }
    x = np.linspace(0.0, 1.0, n)
    return np.stack([np.interp(x, *zip(*segments[c])) for c in "rgb"], -1)


_JET = _jet_lut()


def _float_to_png_bytes(rgb):
    """What `plt.imsave` writes for float RGB in [0, 1]: truncating x * 255."""
    return (np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


def render_depth(depth, valid_mask):
    """DIODE depth -> PITI's jet rendering of log-depth (preprocess_depth.py).

    depth: [H, W] float metres; valid_mask: [H, W] (nonzero = valid). Returns [H, W, 3] uint8;
    invalid pixels are black.
    """
    depth = np.asarray(depth, np.float32)
    valid = np.asarray(valid_mask) > 0
    max_depth = min(300.0, float(np.percentile(depth, 99)))
    clipped = np.clip(depth, 0.5, max_depth)
    log_depth = np.log(np.where(valid, clipped, 1.0))
    normed = log_depth / np.log(max_depth + 1.01)
    # matplotlib's colormap lookup: floor(v * N), under/over clamp to the end colours.
    index = np.clip(np.floor(normed * len(_JET)), 0, len(_JET) - 1).astype(np.int64)
    rgb = _float_to_png_bytes(_JET[index])
    rgb[~valid] = 0
    return rgb


def render_normal(normal):
    """DIODE surface normals [H, W, 3] float -> PITI's affine RGB rendering, [H, W, 3] uint8.

    Pixels whose components sum to zero (no normal) are lifted by min(normal) first, as PITI does.
    """
    normal = np.asarray(normal, np.float32)
    low = normal.min()
    normal = normal + (normal.sum(-1, keepdims=True) == 0).astype(np.float32) * low
    return _float_to_png_bytes((normal - normal.min()) / 2.0)


def resize_photo(image, size):
    """PIL bicubic squash resize of a uint8 [H, W, 3] photo to [size, size, 3] (aspect not kept)."""
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC))


def resize_condition(condition, size):
    """PIL nearest squash resize of a uint8 [H, W] or [H, W, C] condition to size x size."""
    if condition.shape[:2] == (size, size):
        return condition
    squeeze = condition.ndim == 3 and condition.shape[-1] == 1
    pil = Image.fromarray(condition[..., 0] if squeeze else condition)
    out = np.asarray(pil.resize((size, size), Image.NEAREST))
    return out[..., None] if squeeze else out


def to_unit_range(image):
    """uint8 -> float32 in [-1, 1] (ToTensor then Normalize(0.5, 0.5))."""
    return np.asarray(image, np.float32) / 127.5 - 1.0


def hflip(array):
    """Horizontal flip of an HWC or HW array."""
    return np.ascontiguousarray(array[:, ::-1])
