"""`diode`: DIODE RGB-D with surface normals, PITI mode `depth-normal`.

Expected manual_dir layout (train.tar.gz, val.tar.gz and the matching *_normals.tar.gz unpacked
into the same folder, which merges the normals next to the depth files):
  {train,val}/{indoors,outdoor}/scene_*/scan_*/<name>.png
                                            <name>_depth.npy       [H, W, 1] float metres
                                            <name>_depth_mask.npy  [H, W] validity
                                            <name>_normal.npy      [H, W, 3] unit normals
The builder renders depth and normals exactly like PITI's preprocess_depth.py (nearest 256x256,
jet colour map of log-depth, affine normal map) and stores the renderings as PNGs.
"""
import cv2
import numpy as np

from glide_jax.data import conditions
from glide_jax.data.builders import common

LAYOUT = __doc__
DIODE_SPLITS = {"train": "train", "validation": "val"}
_SIDE_FILES = ("_depth", "_depth_mask", "_normal")


def _load_npy(path):
    if not path.is_file():
        raise common.CorruptExampleError(f"missing {path}")
    return np.load(path, allow_pickle=False).astype(np.float32)


def _nearest(array):
    return cv2.resize(array, (common.SIZE, common.SIZE), interpolation=cv2.INTER_NEAREST)


class Diode(common.PitiBuilder):
    """DIODE photos with PITI's depth and normal renderings."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = LAYOUT

    def _info(self):
        return self.dataset_info_from_configs(
            features=common.features(depth=common.image_feature(3), normal=common.image_feature(3)),
            description="DIODE photos, depth and normal renderings at 256x256.")

    def _split_items(self, manual_dir):
        roots = common.split_dirs(DIODE_SPLITS, lambda name: (manual_dir / name,), "DIODE",
                                  "train.tar.gz / val.tar.gz")
        return {split: [(path, root) for path in sorted(root.rglob("*.png"))
                        if not path.stem.endswith(_SIDE_FILES)]
                for split, root in roots.items()}

    def _load(self, item):
        image_path, root = item
        image = common.read_rgb(image_path)
        stem = image_path.with_suffix("")
        depth = _load_npy(stem.with_name(stem.name + "_depth.npy")).squeeze()
        mask = _load_npy(stem.with_name(stem.name + "_depth_mask.npy")).squeeze()
        normal = _load_npy(stem.with_name(stem.name + "_normal.npy"))
        for array, what in ((depth, "depth"), (mask, "depth mask"), (normal, "normal")):
            if array.shape[:2] != image.shape[:2]:
                raise common.CorruptExampleError(
                    f"{image_path}: {what} is {array.shape} but the image is {image.shape}")
        key = str(image_path.relative_to(root).with_suffix(""))
        return key, {"image": conditions.resize_photo(image, common.SIZE),
                     "depth": conditions.render_depth(_nearest(depth), _nearest(mask)),
                     "normal": conditions.render_normal(_nearest(normal)),
                     "file_name": str(image_path.relative_to(root))}
