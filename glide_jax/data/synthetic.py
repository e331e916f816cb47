"""Procedural demo data: coloured shapes on two-region backgrounds, with masks and edge maps.

`SyntheticShapes` is a random-access source with the same example format as the TFDS builders
(`image`, `label`, `sketch`, `captions`, `file_name`), so it runs through the same pipeline. Example
i is a pure function of (seed, i): no download, no preparation. Each class has its own solid colour
in the photo (with mild shading and noise), so mask -> image is easy to learn in minutes.
"""
import cv2
import numpy as np

from glide_jax.data import conditions

SIZE = 256
# (COCO-Stuff class id, name, photo colour RGB). Ids are 0-based stuffthingmaps ids.
BACKGROUNDS = ((156, "sky", (110, 160, 230)), (123, "grass", (70, 150, 60)))
SHAPES = ((36, "circle", (220, 40, 40)), (2, "rectangle", (240, 200, 30)),
          (17, "triangle", (150, 60, 200)))


def _shade(canvas, mask, colour, rng, amount):
    """Fill mask with colour plus a linear shading ramp of random direction."""
    h, w = mask.shape
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None] * amount
    canvas[mask] = (np.asarray(colour, np.float32) * (1 - amount / 2 + ramp))[mask]


def _draw_shape(kind, labels, class_id, rng):
    """Draw a random shape of `kind` into a fresh boolean mask (and paint class_id into labels)."""
    mask = np.zeros(labels.shape, np.uint8)
    cx, cy = rng.integers(40, SIZE - 40, 2)
    r = int(rng.integers(18, 56))
    if kind == "circle":
        cv2.circle(mask, (int(cx), int(cy)), r, 1, -1)
    elif kind == "rectangle":
        w2, h2 = rng.integers(16, 60, 2)
        cv2.rectangle(mask, (int(cx - w2), int(cy - h2)), (int(cx + w2), int(cy + h2)), 1, -1)
    else:
        angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2 * np.pi / 3, 4 * np.pi / 3])
        points = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], -1)
        cv2.fillPoly(mask, [points.round().astype(np.int32)], 1)
    mask = mask.astype(bool)
    labels[mask] = class_id
    return mask


def label_edges(labels):
    """Binary edge map (255 on class boundaries) of a label map."""
    grad = cv2.morphologyEx(labels, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    return np.where(grad > 0, 255, 0).astype(np.uint8)


def make_example(seed, index):
    """Example `index` of the demo dataset with `seed`: uint8 arrays at 256x256."""
    rng = np.random.default_rng([seed, index])
    photo = np.zeros((SIZE, SIZE, 3), np.float32)
    labels = np.zeros((SIZE, SIZE), np.uint8)
    horizon = int(rng.integers(SIZE // 4, 3 * SIZE // 4))
    upper = np.zeros((SIZE, SIZE), bool)
    upper[:horizon] = True
    for (class_id, _, colour), region in zip(BACKGROUNDS, (upper, ~upper)):
        labels[region] = class_id
        _shade(photo, region, colour, rng, 0.3)
    names = []
    for _ in range(int(rng.integers(1, 4))):
        class_id, name, colour = SHAPES[rng.integers(len(SHAPES))]
        _shade(photo, _draw_shape(name, labels, class_id, rng), colour, rng, 0.2)
        names.append(name)
    photo += rng.normal(0, 4, photo.shape)
    image = np.clip(photo, 0, 255).astype(np.uint8)
    return {
        "image": image,
        "label": labels[..., None],
        "sketch": label_edges(labels)[..., None],
        "captions": ["a " + " and a ".join(names) + " over grass under the sky"],
        "file_name": f"synthetic_{seed}_{index:08d}.png",
    }


class SyntheticShapes:
    """Deterministic random-access demo source: len() examples, example i = make_example(seed, i)."""

    def __init__(self, num_examples=1024, seed=0):
        self.num_examples = num_examples
        self.seed = seed

    def __len__(self):
        return self.num_examples

    def __getitem__(self, index):
        if not 0 <= index < self.num_examples:
            raise IndexError(f"index {index} out of range for {self.num_examples} examples")
        return make_example(self.seed, int(index))

    def __repr__(self):
        return f"SyntheticShapes(num_examples={self.num_examples}, seed={self.seed})"


def class_colours():
    """{class name: palette colour of its mask} for the demo classes (for plots and checks)."""
    return {name: tuple(int(v) for v in conditions.COCO_STUFF_PALETTE[cid])
            for cid, name, _ in BACKGROUNDS + SHAPES}
