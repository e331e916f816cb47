"""Each TFDS builder on a miniature official layout, read back through the real pipeline."""
import numpy as np
import pytest

from glide_jax.data import conditions
from glide_jax.data.config import get_data_config
from glide_jax.data.pipeline import create_train_iterator, create_val_iterator
from glide_jax.data.prepare import prepare
from tests.data_pipeline import layouts


def _config(name, data_dir, mode, **overrides):
    cfg = get_data_config()
    cfg.name, cfg.data_dir, cfg.mode = name, str(data_dir), mode
    cfg.num_workers, cfg.uncond_p = 0, 0.0
    cfg.update(overrides)
    return cfg


def _prepared(tmp_path, name, make_layout, config=None):
    manual = tmp_path / "manual"
    make_layout(manual)
    skipped = prepare(name, str(manual), str(tmp_path / "tfds"), config)
    return tmp_path / "tfds", skipped


def _colours(ref):
    """Set of RGB uint8 colours in a [-1, 1] condition batch."""
    pixels = np.round((ref.reshape(-1, 3) + 1) * 127.5).astype(np.uint8)
    return {tuple(int(v) for v in c) for c in np.unique(pixels, axis=0)}


def _palette(*ids):
    return {tuple(int(v) for v in conditions.COCO_STUFF_PALETTE[i]) for i in ids}


def _check_range(batch):
    for key, value in batch.items():
        if value.dtype == np.float32:
            assert value.min() >= -1 and value.max() <= 1, key


def test_coco_stuff_with_corrupt_files(tmp_path):
    def layout(root):
        layouts.coco_stuff(root)
        layouts.add_coco_corruptions(root)

    data_dir, skipped = _prepared(tmp_path, "coco_stuff", layout)
    assert len(skipped["train"]) == 3 and not skipped["validation"]
    reasons = " ".join(reason for _, reason in skipped["train"])
    assert "truncated" in reasons and "out of range" in reasons and "40" in reasons
    cfg = _config("coco_stuff", data_dir, "coco")
    batch = next(create_train_iterator(cfg, 3, seed=0, process_index=0, process_count=1))
    assert batch["image"].shape == (3, 64, 64, 3) and batch["ref"].shape == (3, 256, 256, 3)
    _check_range(batch)
    assert _colours(batch["ref"]) == _palette(0, 5, 96, 181) | {(0, 0, 0)}
    val = list(create_val_iterator(cfg, 3, process_index=0, process_count=1))
    assert len(val) == 1


def test_coco_stuff_missing_labels_names_the_folder(tmp_path):
    manual = tmp_path / "manual"
    (manual / "images" / "val2017").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="stuffthingmaps"):
        prepare("coco_stuff", str(manual), str(tmp_path / "tfds"))


def test_ade20k(tmp_path):
    data_dir, _ = _prepared(tmp_path, "ade20k", layouts.ade20k)
    cfg = _config("ade20k", data_dir, "ade20k", image_size=32)
    batch = next(create_train_iterator(cfg, 2, seed=0, process_index=0, process_count=1))
    assert batch["image"].shape == (2, 32, 32, 3) and batch["ref"].shape == (2, 256, 256, 3)
    # ADE ids 0/1/150 -> unlabeled (black) / palette[0] / palette[149]
    assert _colours(batch["ref"]) == _palette(0, 149) | {(0, 0, 0)}


@pytest.mark.parametrize("with_edges", [True, False])
def test_coco_sketch(tmp_path, with_edges):
    data_dir, _ = _prepared(tmp_path, "coco_sketch",
                            lambda root: layouts.coco_sketch(root, with_edges=with_edges))
    cfg = _config("coco_sketch", data_dir, "coco-edge")
    batch = next(create_val_iterator(cfg, 2, process_index=0, process_count=1))
    assert batch["ref"].shape == (2, 256, 256, 1) and batch["ref_ori"].shape == (2, 256, 256, 3)
    _check_range(batch)
    if with_edges:  # stroke on row 100: distance |row - 100|, scaled to [-1, 1]
        expected = np.clip(np.abs(np.arange(256) - 100), 0, 255) / 127.5 - 1
        np.testing.assert_allclose(batch["ref"][0, :, 7, 0], expected, atol=1e-6)


def test_diode(tmp_path):
    data_dir, _ = _prepared(tmp_path, "diode", layouts.diode)
    cfg = _config("diode", data_dir, "depth-normal")
    batch = next(create_train_iterator(cfg, 2, seed=1, process_index=0, process_count=1))
    assert batch["ref"].shape == (2, 256, 256, 6) and batch["ref_ori"].shape == (2, 256, 256, 3)
    np.testing.assert_array_equal(batch["ref"][..., :3], batch["ref_ori"])
    _check_range(batch)


def test_image_folder_pairs_upsampler(tmp_path):
    data_dir, _ = _prepared(tmp_path, "image_folder_pairs", layouts.image_folder_pairs, "label")
    cfg = _config("image_folder_pairs", data_dir, "coco", builder_config="label", image_size=256,
                  super_res=64)
    batch = next(create_train_iterator(cfg, 2, seed=0, process_index=0, process_count=1))
    assert batch["image"].shape == (2, 256, 256, 3) and batch["low_res"].shape == (2, 64, 64, 3)
    _check_range(batch)
