"""Shared parts of the TFDS builders: feature schema, file readers, corrupt-example accounting.

Every builder stores examples already squashed to 256x256 (what PITI's loaders do first), so a
prepared dataset is compact and the input pipeline only flips, down-sizes and formats:
  `image`      [256, 256, 3] uint8 PNG, bicubic resize of the photo;
  `label`      [256, 256, 1] uint8 PNG, nearest resize of class ids (COCO-Stuff numbering, 255 =
               unlabeled), colourised with PITI's palette in the pipeline;
  `color_map`  [256, 256, 3] uint8 PNG, an RGB condition used as is;
  `sketch`     [256, 256, 1] uint8 PNG, binary edges (255 = stroke), nearest resize;
  `depth`, `normal` [256, 256, 3] uint8 PNG, PITI's DIODE renderings;
  `captions`   list of strings (COCO captions, may be empty); `file_name` the source file.
"""
import collections
import concurrent.futures
import inspect
import logging
import os
import pathlib

import cv2
import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from PIL import Image

from glide_jax.data import conditions

SIZE = 256
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Errors that mean "this example's files are bad", never "the code is wrong".
READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError, cv2.error)
_CHUNK = 256


class CorruptExampleError(ValueError):
    """An example whose files exist but cannot be used (out-of-range label, size mismatch...)."""


def image_feature(channels):
    return tfds.features.Image(shape=(SIZE, SIZE, channels), encoding_format="png")


def features(**conditions_):
    """FeaturesDict with `image`, `file_name` and the given condition features."""
    return tfds.features.FeaturesDict(
        {"image": image_feature(3), "file_name": tfds.features.Text(), **conditions_})


def require_dir(path, what):
    path = pathlib.Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: expected folder {path} (missing); see the layout in "
                                f"glide_jax/data/README.md")
    return path


def first_existing_dir(candidates, what):
    for path in candidates:
        if pathlib.Path(path).is_dir():
            return pathlib.Path(path)
    names = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(f"{what}: none of these folders exists: {names}")


def split_dirs(split_names, candidates, what, source=""):
    """{split: first existing folder of candidates(name)} for the splits on disk.

    split_names: {tfds split: folder name}; candidates(name) -> folders to try, the first being
    the documented one. Raises FileNotFoundError naming the documented folders when no split is
    there; `source` says where they come from (e.g. "train2017.zip / val2017.zip").
    """
    found = {}
    for split, name in split_names.items():
        existing = [path for path in candidates(name) if pathlib.Path(path).is_dir()]
        if existing:
            found[split] = pathlib.Path(existing[0])
    if not found:
        expected = " and/or ".join(str(candidates(name)[0]) for name in split_names.values())
        origin = f" (from {source})" if source else ""
        raise FileNotFoundError(f"{what}: expected {expected}{origin}")
    return found


def list_images(folder):
    return sorted(p for p in pathlib.Path(folder).iterdir()
                  if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def find_by_stem(folder, stem, extensions=IMAGE_EXTENSIONS):
    for ext in extensions:
        path = pathlib.Path(folder) / (stem + ext)
        if path.is_file():
            return path
    raise CorruptExampleError(f"no file named {stem}.* in {folder}")


def read_rgb(path):
    """Fully decoded RGB uint8 [H, W, 3]; a truncated file raises OSError."""
    with Image.open(path) as pil:
        pil.load()
        return np.asarray(pil.convert("RGB"))


def read_single_channel(path):
    """uint8 [H, W] from a grayscale or palette PNG (palette indices kept, not colours)."""
    with Image.open(path) as pil:
        pil.load()
        if pil.mode not in ("L", "P", "I", "I;16"):
            pil = pil.convert("L")
        array = np.asarray(pil)
    if array.ndim != 2:
        raise CorruptExampleError(f"{path}: expected a single-channel image, got {array.shape}")
    return array


def check_same_size(image, condition, path):
    if image.shape[:2] != condition.shape[:2]:
        raise CorruptExampleError(f"{path}: condition is {condition.shape[1]}x{condition.shape[0]}"
                                  f" but the image is {image.shape[1]}x{image.shape[0]}")


def check_label_range(labels, max_id, path):
    bad = labels[(labels > max_id) & (labels != conditions.UNLABELED)]
    if bad.size:
        raise CorruptExampleError(f"{path}: label {int(bad.max())} out of range 0..{max_id} (or 255)")


def binarize_edges(edges):
    """Soft edge maps -> {0, 255} at PITI's HED threshold (0.6)."""
    return np.where(edges > 0.6 * 255, 255, 0).astype(np.uint8)


def num_workers():
    return min(16, os.cpu_count() or 1)


class PitiBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base: ArrayRecord output, thread-parallel decoding, corrupt examples skipped and counted.

    Subclasses implement `_split_items(manual_dir) -> {split: [item, ...]}` and
    `_load(item) -> (key, example)`; `_load` raises one of READ_ERRORS for a bad example.
    After preparation, `skipped[split]` lists `(key_or_path, reason)` of every skipped example.
    """

    VERSION = tfds.core.Version("1.0.0")

    def __init__(self, *, file_format="array_record", **kwargs):
        super().__init__(file_format=file_format, **kwargs)
        self.skipped = collections.defaultdict(list)

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        # TFDS's own lookup needs the `importlib_resources` backport, which is not a dependency.
        return epath.Path(inspect.getfile(cls))

    def _split_items(self, manual_dir):
        raise NotImplementedError

    def _load(self, item):
        raise NotImplementedError

    def _split_generators(self, dl_manager):
        items = self._split_items(pathlib.Path(dl_manager.manual_dir))
        return {split: self._generate_examples(split, split_items)
                for split, split_items in items.items()}

    def _safe_load(self, item):
        try:
            return self._load(item), None
        except READ_ERRORS as error:
            source = item[0] if isinstance(item, tuple) else item
            return None, (str(source), f"{type(error).__name__}: {error}")

    def _generate_examples(self, split, items):
        kept = 0
        with concurrent.futures.ThreadPoolExecutor(num_workers()) as pool:
            for start in range(0, len(items), _CHUNK):
                for result, failure in pool.map(self._safe_load, items[start:start + _CHUNK]):
                    if failure is not None:
                        self.skipped[split].append(failure)
                        logging.warning("%s/%s: skipped %s (%s)", self.name, split, *failure)
                        continue
                    kept += 1
                    yield result
        logging.warning("%s/%s: kept %d examples, skipped %d corrupt or unreadable", self.name,
                        split, kept, len(self.skipped[split]))
        if kept == 0:
            raise FileNotFoundError(f"{self.name}/{split}: no usable example among {len(items)} "
                                    f"candidates; first problem: {self.skipped[split][:1]}")
