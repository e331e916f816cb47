"""Prepare a benchmark from its official archives into TFDS ArrayRecord files.

  python -m glide_jax.data.prepare --dataset=coco_stuff --manual_dir=/data/cocostuff \
      --data_dir=/data/tfds [--config=label]

The folder layouts each builder expects are in glide_jax/data/README.md. Corrupt or unreadable
examples are skipped, logged and counted; the counts are printed at the end.
"""
from absl import app, flags
import tensorflow_datasets as tfds

from glide_jax.data import builders

_DATASET = flags.DEFINE_string("dataset", None, f"one of {sorted(builders.BUILDERS)}")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "folder with the unpacked official archives")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir to write to")
_CONFIG = flags.DEFINE_string("config", None, "builder config (image_folder_pairs: label|color|sketch)")


def prepare(dataset, manual_dir, data_dir=None, config=None):
    """Builds the dataset; returns {split: [(source file, reason), ...]} of skipped examples."""
    builder = builders.get_builder(dataset, data_dir, config)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return dict(builder.skipped)


def main(argv):
    del argv
    skipped = prepare(_DATASET.value, _MANUAL_DIR.value, _DATA_DIR.value, _CONFIG.value)
    for split, problems in sorted(skipped.items()):
        print(f"{_DATASET.value}/{split}: skipped {len(problems)} corrupt or unreadable examples")
        for source, reason in problems[:20]:
            print(f"  {source}: {reason}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["dataset", "manual_dir"])
    app.run(main)
