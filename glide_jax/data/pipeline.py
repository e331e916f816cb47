"""Input pipeline: random-access source -> host shard -> shuffle -> PITI transforms -> batches.

Built on grain over the TFDS ArrayRecord files (or the procedural demo source). Every random
choice (shuffle order, flip, condition dropout, degradation) is a pure function of the seed, the
process index and the element's position, so the pipeline is deterministic and its position is a
small JSON-able state: `it.get_state()` / `it.set_state(state)` (or grain's orbax handler,
`grain.checkpoint.CheckpointSave(it)` / `CheckpointRestore(it)`), and a restored iterator yields
exactly the batch that would have come next.

Batches are dicts of numpy arrays for this process (global batch / process count):
  image    [B, R, R, 3] float32 in [-1, 1]     R = data.image_size
  ref      [B, S, S, C] float32 in [-1, 1]     S = 256 (PITI's condition size); C = 3 masks,
                                               1 sketches, 6 depth-normal; null condition (ones)
                                               with probability uncond_p in training
  ref_ori  [B, S, S, 3] float32 in [-1, 1]     the condition as seen, before dropout
  low_res  [B, r, r, 3] float32 in [-1, 1]     r = data.super_res, upsampler only
  tokens   [B, ctx] int32, mask [B, ctx] bool  mode "text" (from the `tokenizer` argument)
"""
import jax
import numpy as np
import grain

from glide_jax.data import builders, conditions, degradation, synthetic
from glide_jax.data.config import MODES
from glide_jax.modes import CONDITION_SIZE, null_condition
SOURCE_SIZE = builders.common.SIZE  # every source stores 256x256 examples (PITI's first resize)


def load_source(data_config, split):
    """Random-access source (len / getitem of example dicts) for `split`."""
    if data_config.name == "synthetic":
        if split == data_config.train_split:
            return synthetic.SyntheticShapes(data_config.synthetic_num_examples, seed=0)
        return synthetic.SyntheticShapes(data_config.synthetic_val_examples, seed=1)
    builder = builders.get_builder(data_config.name, data_config.data_dir or None,
                                   data_config.builder_config or None)
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"dataset {data_config.name} is not prepared under {builder.data_dir}; run "
            f"python -m glide_jax.data.prepare --dataset={data_config.name} --manual_dir=... "
            f"--data_dir={data_config.data_dir or '<default>'}")
    return builder.as_data_source(split)


def _as_str(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class PitiTransform(grain.transforms.RandomMap):
    """One raw 256x256 example -> one training/eval example (PITI's loaders, PITI `image_datasets_mask.py` `ImageDataset`)."""

    def __init__(self, data_config, train, tokenizer=None):
        if data_config.mode not in MODES:
            raise ValueError(f"data.mode must be one of {MODES}, got {data_config.mode!r}")
        if not 0 < data_config.image_size <= SOURCE_SIZE:
            raise ValueError(f"data.image_size must be in 1..256, got {data_config.image_size}")
        if data_config.mode == "text" and tokenizer is None:
            raise ValueError("data.mode 'text' needs a tokenizer(caption) -> (tokens, mask)")
        self.cfg = data_config
        self.train = train
        self.tokenizer = tokenizer

    def _condition(self, example):
        """(ref, ref_ori) as uint8 [S, S, C] from a flipped raw example."""
        mode, size = self.cfg.mode, CONDITION_SIZE
        if mode in ("coco", "ade20k"):
            if "color_map" in example:
                colour = example["color_map"]
            else:
                colour = conditions.colorize_labels(example["label"])
            colour = conditions.resize_condition(colour, size)
            return colour, colour
        if mode in ("coco-edge", "flickr-edge"):
            sketch = conditions.resize_condition(np.asarray(example["sketch"]), size)[..., 0]
            distance = conditions.sketch_distance_map(sketch)
            return distance[..., None], np.repeat(sketch[..., None], 3, -1)
        normal = conditions.resize_condition(np.asarray(example["normal"]), size)
        depth = conditions.resize_condition(np.asarray(example["depth"]), size)
        return np.concatenate([normal, depth], -1), normal

    def _text(self, example, rng, drop):
        captions = [_as_str(c) for c in example.get("captions", [])]
        caption = "" if drop or not captions else captions[rng.integers(len(captions))]
        tokens, mask = self.tokenizer(caption)
        return {"tokens": np.asarray(tokens, np.int32), "mask": np.asarray(mask, bool)}

    def random_map(self, element, rng):
        cfg = self.cfg
        flip = self.train and cfg.flip and rng.random() < 0.5
        arrays = {k: np.asarray(v) for k, v in element.items()
                  if k in ("image", "label", "color_map", "sketch", "depth", "normal")}
        if flip:
            arrays = {k: conditions.hflip(v) for k, v in arrays.items()}
        image = conditions.resize_photo(arrays["image"], cfg.image_size)
        out = {"image": conditions.to_unit_range(image)}
        if cfg.super_res:
            low_res = degradation.degrade_bsrgan_light(
                image, rng, sf=cfg.image_size // cfg.super_res, l0_smooth_bug=cfg.l0_smooth_bug)
            out["low_res"] = conditions.to_unit_range(low_res)
        # SR pairs are never dropped (PITI returns before its dropout step).
        drop = self.train and not cfg.super_res and rng.random() < cfg.uncond_p
        if cfg.mode == "text":
            out.update(self._text(element, rng, drop))
            return out
        ref, ref_ori = self._condition(arrays)
        out["ref_ori"] = conditions.to_unit_range(ref_ori)
        out["ref"] = conditions.to_unit_range(ref)
        if drop:
            out["ref"] = null_condition(out["ref"])
        return out


def _process(process_index, process_count):
    return (jax.process_index() if process_index is None else process_index,
            jax.process_count() if process_count is None else process_count)


def _per_host_batch(global_batch_size, process_count):
    if global_batch_size % process_count:
        raise ValueError(f"global batch {global_batch_size} is not divisible by the "
                         f"{process_count} processes")
    return global_batch_size // process_count


def _derived_seed(seed, process_index, stream):
    """Independent 32-bit seeds per (seed, process, stream), so hosts do not flip in lockstep."""
    return int(np.random.SeedSequence([seed, process_index, stream]).generate_state(1)[0])


def make_dataset(data_config, split, seed, train, process_index, process_count, tokenizer=None):
    """grain.MapDataset of transformed examples for this process's shard (infinite if train)."""
    ds = grain.MapDataset.source(load_source(data_config, split))
    usable = (len(ds) // process_count) * process_count  # equal shards: same batch count per host
    if usable == 0:
        raise ValueError(f"{data_config.name}/{split} has {len(ds)} examples, fewer than the "
                         f"{process_count} processes")
    ds = ds[process_index:usable:process_count]
    if train:
        if data_config.shuffle:
            ds = ds.shuffle(seed=_derived_seed(seed, process_index, 0))
        ds = ds.repeat(None)  # grain reshuffles every epoch
    transform = PitiTransform(data_config, train, tokenizer)
    return ds.random_map(transform, seed=_derived_seed(seed, process_index, 1))


def _iterator(ds, data_config, batch_size, drop_remainder):
    options = grain.ReadOptions(num_threads=data_config.num_workers,
                                prefetch_buffer_size=data_config.prefetch_buffer_size)
    ds = ds.to_iter_dataset(options).batch(batch_size, drop_remainder=drop_remainder)
    return iter(ds)


def create_train_iterator(data_config, global_batch_size, seed, process_index=None,
                          process_count=None, tokenizer=None):
    """Infinite, shuffled, augmented iterator of this process's batches (see module doc).

    Returns a grain DatasetIterator: `next(it)` -> batch dict, `it.get_state()` -> dict to save
    with the checkpoint, `it.set_state(state)` to resume at the exact next batch.
    """
    process_index, process_count = _process(process_index, process_count)
    batch = _per_host_batch(global_batch_size, process_count)
    ds = make_dataset(data_config, data_config.train_split, seed, True, process_index,
                      process_count, tokenizer)
    return _iterator(ds, data_config, batch, drop_remainder=True)


def create_val_iterator(data_config, global_batch_size, seed=0, process_index=None,
                        process_count=None, tokenizer=None, drop_remainder=True):
    """One ordered pass over the validation split: no flip, no dropout; upsampler pairs keep
    PITI's random degradation, seeded by `seed`. Same batch format as training."""
    process_index, process_count = _process(process_index, process_count)
    batch = _per_host_batch(global_batch_size, process_count)
    ds = make_dataset(data_config, data_config.val_split, seed, False, process_index,
                      process_count, tokenizer)
    return _iterator(ds, data_config, batch, drop_remainder=drop_remainder)
