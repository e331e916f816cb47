"""`image_folder_pairs`: a user's own photos and conditions.

Expected manual_dir layout, one condition per photo with the same file stem:
  images/<stem>.{jpg,png,...}      conditions/<stem>.{png,...}            -> split `train`
or, with separate splits:
  train/images, train/conditions, validation/images, validation/conditions
Builder configs say what a condition is:
  `label`  grayscale class ids in COCO-Stuff numbering (0..181, 255 unlabeled) -> PITI palette;
  `color`  an RGB condition used as is (e.g. an already colourised mask);
  `sketch` white strokes on black (binarised at 0.6) -> distance map in the pipeline.
"""
import pathlib

import numpy as np
import tensorflow_datasets as tfds

from glide_jax.data import conditions
from glide_jax.data.builders import common

LAYOUT = __doc__


class ImageFolderPairs(common.PitiBuilder):
    """Paired `images/` and `conditions/` folders."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = LAYOUT
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="label", description="grayscale class-id maps"),
        tfds.core.BuilderConfig(name="color", description="RGB condition images"),
        tfds.core.BuilderConfig(name="sketch", description="white-on-black sketches"),
    ]

    def _info(self):
        condition = {"label": {"label": common.image_feature(1)},
                     "color": {"color_map": common.image_feature(3)},
                     "sketch": {"sketch": common.image_feature(1)}}[self.builder_config.name]
        return self.dataset_info_from_configs(features=common.features(**condition),
                                              description="User-provided image/condition pairs.")

    def _split_items(self, manual_dir):
        if (manual_dir / "train").is_dir():
            roots = {split: manual_dir / split for split in ("train", "validation")
                     if (manual_dir / split).is_dir()}
        else:
            roots = {"train": manual_dir}
        items = {}
        for split, root in roots.items():
            image_dir = common.require_dir(root / "images", f"{split} photos")
            condition_dir = common.require_dir(root / "conditions", f"{split} conditions")
            items[split] = [(path, condition_dir) for path in common.list_images(image_dir)]
        return items

    def _load(self, item):
        image_path, condition_dir = item
        condition_path = common.find_by_stem(condition_dir, image_path.stem)
        image = common.read_rgb(image_path)
        kind = self.builder_config.name
        if kind == "color":
            condition = common.read_rgb(condition_path)
        else:
            condition = common.read_single_channel(condition_path)
        common.check_same_size(image, condition, condition_path)
        example = {"image": conditions.resize_photo(image, common.SIZE),
                   "file_name": pathlib.Path(image_path).name}
        resized = conditions.resize_condition(condition.astype(np.uint8), common.SIZE)
        if kind == "label":
            common.check_label_range(condition, conditions.NUM_COCO_STUFF_CLASSES - 1,
                                     condition_path)
            example["label"] = resized[..., None]
        elif kind == "sketch":
            example["sketch"] = common.binarize_edges(resized)[..., None]
        else:
            example["color_map"] = resized
        return image_path.stem, example
