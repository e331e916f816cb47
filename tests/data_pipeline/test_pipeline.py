"""grain input pipeline: determinism, host sharding, exact resume, demo data, modes."""
import hashlib

import grain
import numpy as np
import orbax.checkpoint as ocp
import pytest

from glide_jax.data.config import get_data_config
from glide_jax.data.pipeline import create_train_iterator, create_val_iterator
from glide_jax.data.synthetic import SyntheticShapes, class_colours


def _config(**overrides):
    cfg = get_data_config()
    cfg.num_workers = 0
    cfg.synthetic_num_examples = 16
    cfg.synthetic_val_examples = 6
    cfg.image_size = 32
    cfg.update(overrides)
    return cfg


def _train(cfg, batch=4, seed=0, index=0, count=1):
    return create_train_iterator(cfg, batch, seed, process_index=index, process_count=count)


def _equal(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _digest(image):
    return hashlib.md5(np.ascontiguousarray(image).tobytes()).hexdigest()


def test_batch_format():
    batch = next(_train(_config()))
    assert set(batch) == {"image", "ref", "ref_ori"}
    assert batch["image"].shape == (4, 32, 32, 3) and batch["image"].dtype == np.float32
    assert batch["ref"].shape == batch["ref_ori"].shape == (4, 256, 256, 3)
    for value in batch.values():
        assert -1 <= value.min() and value.max() <= 1


def test_same_seed_same_batches_other_seed_differs():
    cfg = _config()
    a, b, c = _train(cfg, seed=3), _train(cfg, seed=3), _train(cfg, seed=4)
    first = [next(a) for _ in range(5)]  # crosses an epoch boundary (16 examples)
    assert all(_equal(x, next(b)) for x in first)
    assert not _equal(first[0], next(c))


def test_hosts_see_disjoint_shards():
    cfg = _config(flip=False)
    seen = []
    for index in range(2):
        it = _train(cfg, batch=4, index=index, count=2)  # 2 per host, 8 examples per shard
        seen.append({_digest(img) for _ in range(4) for img in next(it)["image"]})
    assert len(seen[0]) == len(seen[1]) == 8 and not seen[0] & seen[1]
    with pytest.raises(ValueError, match="divisible"):
        _train(cfg, batch=3, count=2)


def test_resume_continues_with_exact_next_batch():
    cfg = _config(num_workers=2)
    it = _train(cfg, seed=7)
    for _ in range(3):
        next(it)
    state = it.get_state()
    expected = [next(it) for _ in range(3)]
    resumed = _train(cfg, seed=7)
    resumed.set_state(state)
    assert all(_equal(x, next(resumed)) for x in expected)


def test_resume_through_orbax(tmp_path):
    cfg = _config()
    it = _train(cfg, seed=1)
    next(it)
    checkpointer = ocp.Checkpointer(grain.checkpoint.CheckpointHandler())
    checkpointer.save(tmp_path / "data", args=grain.checkpoint.CheckpointSave(it))
    expected = next(it)
    resumed = _train(cfg, seed=1)
    checkpointer.restore(tmp_path / "data", args=grain.checkpoint.CheckpointRestore(resumed))
    assert _equal(expected, next(resumed))


def test_condition_dropout_rate_and_null_condition():
    cfg = _config(uncond_p=0.5, synthetic_num_examples=64)
    batch = next(_train(cfg, batch=64))
    dropped = np.all(batch["ref"] == 1.0, axis=(1, 2, 3))
    assert 16 < dropped.sum() < 48
    assert not np.all(batch["ref_ori"] == 1.0, axis=(1, 2, 3)).any()
    assert not np.all(next(_train(_config(uncond_p=0.0)))["ref"] == 1.0, axis=(1, 2, 3)).any()


def test_validation_is_ordered_unflipped_and_finite():
    cfg = _config(uncond_p=1.0, image_size=256)
    batches = list(create_val_iterator(cfg, 2, process_index=0, process_count=1))
    assert len(batches) == 3
    source = SyntheticShapes(6, seed=1)
    np.testing.assert_array_equal(np.round((batches[1]["image"][0] + 1) * 127.5), source[2]["image"])
    assert not np.all(batches[0]["ref"] == 1.0)


def test_demo_modes_sketch_upsampler_text():
    sketch = next(_train(_config(mode="coco-edge")))
    assert sketch["ref"].shape == (4, 256, 256, 1) and sketch["ref"].min() == -1.0
    sr = next(_train(_config(image_size=256, super_res=64, uncond_p=1.0), batch=2))
    assert sr["low_res"].shape == (2, 64, 64, 3) and not np.all(sr["ref"] == 1.0)

    def tokenizer(caption):
        ids = [len(w) for w in caption.split()][:8]
        return np.pad(ids, (0, 8 - len(ids))), np.arange(8) < len(ids)

    text = next(create_train_iterator(_config(mode="text"), 4, 0, 0, 1, tokenizer=tokenizer))
    assert text["tokens"].shape == (4, 8) and text["tokens"].dtype == np.int32
    assert text["mask"].dtype == bool and set(text) == {"image", "tokens", "mask"}


def test_synthetic_source_is_deterministic_and_learnable():
    a, b = SyntheticShapes(4, seed=0), SyntheticShapes(4, seed=0)
    assert _equal({k: np.asarray(v) for k, v in a[3].items() if k != "captions"},
                  {k: np.asarray(v) for k, v in b[3].items() if k != "captions"})
    example = a[0]
    labels = example["label"][..., 0]
    assert set(np.unique(labels)) <= {156, 123, 36, 2, 17}
    # each class is a distinct solid-ish colour in the photo
    means = [example["image"][labels == c].mean(0) for c in np.unique(labels)]
    assert min(np.abs(m1 - m2).max() for i, m1 in enumerate(means) for m2 in means[i + 1:]) > 40
    assert len(set(class_colours().values())) == 5
    with pytest.raises(IndexError):
        a[4]
