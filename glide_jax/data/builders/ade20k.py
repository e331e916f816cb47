"""`ade20k`: ADE20K scene parsing (ADEChallengeData2016), PITI mode `ade20k`.

Expected manual_dir layout (ADEChallengeData2016.zip unpacked; manual_dir may also be the
ADEChallengeData2016 folder itself):
  ADEChallengeData2016/images/{training,validation}/ADE_*.jpg
  ADEChallengeData2016/annotations/{training,validation}/ADE_*.png   (class ids 0..150)
Labels are stored in the COCO-Stuff convention (class k >= 1 -> k - 1, "other" 0 -> 255) so the
pipeline colourises them with the same palette; unlabeled stays black. PITI used the full ADE20K
release's colour-coded `_seg.png` files instead; that release needs a separate licence.
"""
import numpy as np

from glide_jax.data import conditions
from glide_jax.data.builders import common

ADE_SPLITS = {"train": "training", "validation": "validation"}
NUM_ADE_CLASSES = 150

LAYOUT = __doc__


def ade_to_stored_labels(labels):
    """ADE ids (0 = other, 1..150) -> stored ids (255, 0..149)."""
    labels = labels.astype(np.int32)
    return np.where(labels == 0, conditions.UNLABELED, labels - 1).astype(np.uint8)


class Ade20k(common.PitiBuilder):
    """ADE20K SceneParsing photos with their 150-class label maps."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = LAYOUT

    def _info(self):
        return self.dataset_info_from_configs(
            features=common.features(label=common.image_feature(1)),
            description="ADE20K photos and label maps squashed to 256x256.")

    def _split_items(self, manual_dir):
        root = manual_dir / "ADEChallengeData2016"
        root = root if root.is_dir() else manual_dir
        common.require_dir(root / "images", "ADEChallengeData2016 photos")
        common.require_dir(root / "annotations", "ADEChallengeData2016 annotations")
        items = {}
        image_dirs = common.split_dirs(ADE_SPLITS, lambda name: (root / "images" / name,), "ADE20K")
        for split, image_dir in image_dirs.items():
            name = ADE_SPLITS[split]
            label_dir = common.require_dir(root / "annotations" / name, f"ADE20K {name} labels")
            items[split] = [(path, label_dir / (path.stem + ".png"))
                            for path in common.list_images(image_dir)]
        return items

    def _load(self, item):
        image_path, label_path = item
        image = common.read_rgb(image_path)
        labels = common.read_single_channel(label_path)
        common.check_same_size(image, labels, label_path)
        if labels.max() > NUM_ADE_CLASSES:
            raise common.CorruptExampleError(
                f"{label_path}: label {int(labels.max())} out of range 0..{NUM_ADE_CLASSES}")
        stored = conditions.resize_condition(ade_to_stored_labels(labels), common.SIZE)
        return image_path.stem, {"image": conditions.resize_photo(image, common.SIZE),
                                 "label": stored[..., None], "file_name": image_path.name}
