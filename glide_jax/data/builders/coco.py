"""COCO-based builders: `coco_stuff` (label maps + captions) and `coco_sketch` (edge maps).

Expected manual_dir layout (the cocostuff repository's getCocoStuff.sh layout):
  images/train2017/*.jpg, images/val2017/*.jpg            (train2017.zip, val2017.zip)
  annotations/train2017/*.png, annotations/val2017/*.png  (stuffthingmaps_trainval2017.zip)
  annotations/captions_{train,val}2017.json               (optional, annotations_trainval2017.zip)
  edges/{train2017,val2017}/<stem>.png                    (coco_sketch only, optional)
`train2017/` and `val2017/` directly under manual_dir are accepted for the photos and
`stuffthingmaps_trainval2017/{train2017,val2017}` for the label maps. Splits present on disk are
prepared (`train` from train2017, `validation` from val2017).
"""
import json
import pathlib

import cv2
import numpy as np
import tensorflow_datasets as tfds

from glide_jax.data import conditions
from glide_jax.data.builders import common

COCO_SPLITS = {"train": "train2017", "validation": "val2017"}
CANNY_THRESHOLDS = (100, 200)

LAYOUT = __doc__


def coco_image_dirs(manual_dir):
    """{split: folder of photos} for the COCO splits on disk (error when there is none)."""
    return common.split_dirs(COCO_SPLITS, lambda name: (manual_dir / "images" / name,
                                                        manual_dir / name),
                             "COCO photos", "train2017.zip / val2017.zip")


def load_captions(manual_dir, coco_split):
    """file_name -> [captions] from annotations/captions_<split>.json, or {} when absent."""
    path = manual_dir / "annotations" / f"captions_{coco_split}.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    names = {image["id"]: image["file_name"] for image in data["images"]}
    captions = {}
    for annotation in data["annotations"]:
        captions.setdefault(names[annotation["image_id"]], []).append(annotation["caption"].strip())
    return captions


class CocoStuff(common.PitiBuilder):
    """COCO-Stuff 2017 photos with their 182-class label maps (PITI mode `coco`) and captions."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = LAYOUT

    def _info(self):
        return self.dataset_info_from_configs(
            features=common.features(label=common.image_feature(1),
                                     captions=tfds.features.Sequence(tfds.features.Text())),
            description="COCO-Stuff photos and label maps squashed to 256x256.")

    def _split_items(self, manual_dir):
        items = {}
        for split, image_dir in coco_image_dirs(manual_dir).items():
            name = COCO_SPLITS[split]
            label_dir = common.first_existing_dir(
                [manual_dir / "annotations" / name,
                 manual_dir / "stuffthingmaps_trainval2017" / name],
                f"COCO-Stuff label maps for {name} (stuffthingmaps_trainval2017.zip)")
            captions = load_captions(manual_dir, name)
            items[split] = [(path, label_dir / (path.stem + ".png"), tuple(captions.get(path.name, ())))
                            for path in common.list_images(image_dir)]
        return items

    def _load(self, item):
        image_path, label_path, captions = item
        image = common.read_rgb(image_path)
        labels = common.read_single_channel(label_path)
        common.check_same_size(image, labels, label_path)
        common.check_label_range(labels, conditions.NUM_COCO_STUFF_CLASSES - 1, label_path)
        return image_path.stem, {
            "image": conditions.resize_photo(image, common.SIZE),
            "label": conditions.resize_condition(labels.astype(np.uint8), common.SIZE)[..., None],
            "captions": list(captions),
            "file_name": image_path.name,
        }


def canny_edges(image256):
    """Classical fallback for HED: Canny on the 256x256 photo, white (255) edges on black."""
    gray = cv2.cvtColor(image256, cv2.COLOR_RGB2GRAY)
    return cv2.Canny(gray, *CANNY_THRESHOLDS)


class CocoSketch(common.PitiBuilder):
    """COCO photos with edge maps (PITI mode `coco-edge`).

    Edge maps come from `edges/<split>/<stem>.png` (e.g. HED run by the user; soft maps are
    binarised at 0.6 like PITI's HED script) or, when no `edges/` folder exists, from Canny
    (thresholds 100/200) on the 256x256 photo. Canny edges are thinner and noisier than HED's, so a
    model trained on them expects Canny-like sketches.
    """

    MANUAL_DOWNLOAD_INSTRUCTIONS = LAYOUT

    def _info(self):
        return self.dataset_info_from_configs(
            features=common.features(sketch=common.image_feature(1)),
            description="COCO photos and binary edge maps squashed to 256x256.")

    def _split_items(self, manual_dir):
        items = {}
        for split, image_dir in coco_image_dirs(manual_dir).items():
            edge_dir = manual_dir / "edges" / COCO_SPLITS[split]
            if (manual_dir / "edges").is_dir():
                common.require_dir(edge_dir, "HED edge maps")
            else:
                edge_dir = None
            items[split] = [(path, edge_dir) for path in common.list_images(image_dir)]
        return items

    def _load(self, item):
        image_path, edge_dir = item
        image = common.read_rgb(image_path)
        image256 = conditions.resize_photo(image, common.SIZE)
        if edge_dir is None:
            sketch = canny_edges(image256)
        else:
            edge_path = common.find_by_stem(edge_dir, image_path.stem, (".png",))
            edges = common.read_single_channel(edge_path)
            if edges.shape != (common.SIZE, common.SIZE):
                common.check_same_size(image, edges, edge_path)
            sketch = common.binarize_edges(conditions.resize_condition(edges, common.SIZE))
        return image_path.stem, {"image": image256, "sketch": sketch[..., None],
                                 "file_name": image_path.name}
