"""TFDS builders for PITI's benchmarks and user data (ArrayRecord files, manual downloads)."""
from glide_jax.data.builders.ade20k import Ade20k
from glide_jax.data.builders.coco import CocoSketch, CocoStuff
from glide_jax.data.builders.common import CorruptExampleError, PitiBuilder
from glide_jax.data.builders.diode import Diode
from glide_jax.data.builders.image_folder_pairs import ImageFolderPairs

BUILDERS = {
    "coco_stuff": CocoStuff,
    "ade20k": Ade20k,
    "coco_sketch": CocoSketch,
    "diode": Diode,
    "image_folder_pairs": ImageFolderPairs,
}


def get_builder(name, data_dir=None, config=None):
    """The builder for `name` (a key of BUILDERS), writing/reading ArrayRecord under data_dir."""
    if name not in BUILDERS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(BUILDERS)}")
    kwargs = {"data_dir": data_dir}
    if config is not None:
        kwargs["config"] = config
    return BUILDERS[name](**kwargs)
