"""Miniature copies of the official on-disk layouts, written with PIL/numpy."""
import json

import numpy as np
from PIL import Image


def _photo(rng, h=48, w=64):
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def coco_stuff(root, n=3, seed=0):
    """images/{train,val}2017/*.jpg, annotations/{train,val}2017/*.png, captions json."""
    rng = np.random.default_rng(seed)
    for split in ("train2017", "val2017"):
        (root / "images" / split).mkdir(parents=True)
        (root / "annotations" / split).mkdir(parents=True)
        images, annotations = [], []
        for i in range(n):
            name = f"{i + 1:012d}"
            _photo(rng).save(root / "images" / split / f"{name}.jpg")
            labels = rng.choice([0, 5, 96, 181, 255], (48, 64)).astype(np.uint8)
            Image.fromarray(labels).save(root / "annotations" / split / f"{name}.png")
            images.append({"id": i + 1, "file_name": f"{name}.jpg"})
            annotations.append({"image_id": i + 1, "caption": f"photo {i} "})
        (root / "annotations" / f"captions_{split}.json").write_text(
            json.dumps({"images": images, "annotations": annotations}))


def add_coco_corruptions(root):
    """One truncated JPEG, one out-of-range label, one size mismatch in train2017."""
    rng = np.random.default_rng(9)
    images, labels = root / "images" / "train2017", root / "annotations" / "train2017"
    _photo(rng).save(images / "900000000001.jpg")
    data = (images / "900000000001.jpg").read_bytes()
    (images / "900000000001.jpg").write_bytes(data[: len(data) // 2])
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(labels / "900000000001.png")
    _photo(rng).save(images / "900000000002.jpg")
    Image.fromarray(np.full((48, 64), 200, np.uint8)).save(labels / "900000000002.png")
    _photo(rng).save(images / "900000000003.jpg")
    Image.fromarray(np.zeros((40, 64), np.uint8)).save(labels / "900000000003.png")


def ade20k(root, n=3, seed=0):
    rng = np.random.default_rng(seed)
    base = root / "ADEChallengeData2016"
    for split, prefix in (("training", "ADE_train"), ("validation", "ADE_val")):
        (base / "images" / split).mkdir(parents=True)
        (base / "annotations" / split).mkdir(parents=True)
        for i in range(n):
            name = f"{prefix}_{i + 1:08d}"
            _photo(rng).save(base / "images" / split / f"{name}.jpg")
            labels = rng.choice([0, 1, 150], (48, 64)).astype(np.uint8)
            Image.fromarray(labels).save(base / "annotations" / split / f"{name}.png")


def coco_sketch(root, n=3, seed=0, with_edges=True):
    rng = np.random.default_rng(seed)
    for split in ("train2017", "val2017"):
        (root / "images" / split).mkdir(parents=True)
        if with_edges:
            (root / "edges" / split).mkdir(parents=True)
        for i in range(n):
            name = f"{i + 1:012d}"
            _photo(rng).save(root / "images" / split / f"{name}.jpg")
            if with_edges:
                edges = np.zeros((256, 256), np.uint8)
                edges[100, :] = 250  # a soft HED response above the 0.6 threshold
                Image.fromarray(edges).save(root / "edges" / split / f"{name}.png")


def diode(root, n=2, seed=0):
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        scan = root / split / "indoors" / "scene_00019" / "scan_00183"
        scan.mkdir(parents=True)
        for i in range(n):
            name = f"00019_00183_indoors_{i:03d}_010"
            _photo(rng, 48, 64).save(scan / f"{name}.png")
            np.save(scan / f"{name}_depth.npy", rng.uniform(0.6, 10, (48, 64, 1)).astype(np.float32))
            np.save(scan / f"{name}_depth_mask.npy", (rng.random((48, 64)) > 0.1).astype(np.float32))
            normal = rng.normal(size=(48, 64, 3)).astype(np.float32)
            np.save(scan / f"{name}_normal.npy", normal / np.linalg.norm(normal, axis=-1, keepdims=True))


def image_folder_pairs(root, n=3, seed=0):
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "conditions").mkdir(parents=True)
    for i in range(n):
        _photo(rng).save(root / "images" / f"img{i}.jpg")
        Image.fromarray(rng.choice([3, 7], (48, 64)).astype(np.uint8)).save(
            root / "conditions" / f"img{i}.png")
