"""Mask fidelity of a PITI mask model on the demo domain (glide_jax.data.fidelity), with the
numbers that make it readable: the ceiling and two floors, measured on the same masks.

    fidelity/miou               samples for the validation masks, with the grid's sampler,
                                steps and guidance (config.sample_grid)
    fidelity/ceiling_miou       the ground-truth photos of those masks
    fidelity/null_miou          samples from the null condition (what the model draws unprompted)
    fidelity/mismatched_miou    ground-truth photos against other examples' masks
    fidelity/iou/<class>        per class, for the samples

Run after the last training phase (config.eval.fidelity_examples > 0) and by --mode=eval.
"""
from __future__ import annotations

import logging
from typing import Dict

import jax
import numpy as np

from glide_jax import parallel
from glide_jax.data import fidelity
from glide_jax.data import pipeline as input_pipeline
from glide_jax.modes import null_condition
from glide_jax.train.step import MODEL_BATCH_KEYS
from glide_jax.train.visualize import make_sample_fn


def evaluate_fidelity(setup, params, num_examples: int, seed: int = 4321) -> Dict[str, float]:
    """Mask fidelity over the first `num_examples` validation masks (see module doc)."""
    config = setup.config
    g = config.sample_grid
    batch_size = config.eval.batch_size or config.train.batch_size
    sample = make_sample_fn(setup.model, setup.options, g.steps, float(g.guidance_scale),
                            sampler=g.sampler)
    unconditional = make_sample_fn(setup.model, setup.options, g.steps, 1.0, sampler=g.sampler)
    counts = {k: None for k in ("samples", "ceiling", "null", "mismatched")}
    seen, key = 0, jax.random.PRNGKey(seed)
    rep = parallel.replicated(setup.mesh)
    for local in input_pipeline.create_val_iterator(config.data, batch_size, seed=config.seed):
        if seen >= num_examples:
            break
        labels = fidelity.labels_from_colour_masks(np.asarray(local["ref_ori"]))
        batch = parallel.global_batch(local, setup.mesh, MODEL_BATCH_KEYS)
        key, k1, k2 = jax.random.split(key, 3)
        samples = parallel.to_host(sample(params, batch, jax.device_put(k1, rep)))
        null_batch = dict(batch, ref=null_condition(batch["ref"]))
        null = parallel.to_host(unconditional(params, null_batch, jax.device_put(k2, rep)))
        truth = np.asarray(local["image"])
        n = min(len(labels), num_examples - seen)
        pairs = {"samples": (samples, labels), "ceiling": (truth, labels),
                 "null": (null, labels), "mismatched": (truth, np.roll(labels, 1, axis=0))}
        for name, (images, masks) in pairs.items():
            counts[name] = fidelity.add_counts(
                counts[name], fidelity.confusion_counts(images[:n], masks[:n]))
        seen += n
    if seen < num_examples:
        raise ValueError(f"eval.fidelity_examples={num_examples}, but the validation split has "
                         f"{seen} examples in batches of {batch_size} (data.synthetic_val_examples)")
    samples = fidelity.summarize(counts["samples"])
    out = {f"fidelity/{k}": v for k, v in samples.items()}
    for name in ("ceiling", "null", "mismatched"):
        out[f"fidelity/{name}_miou"] = fidelity.summarize(counts[name])["miou"]
    out["fidelity/num_examples"] = float(seen)
    out["fidelity/fraction_of_ceiling"] = out["fidelity/miou"] / out["fidelity/ceiling_miou"]
    return out


def describe(metrics: Dict[str, float]) -> str:
    return (f"mask fidelity on {int(metrics['fidelity/num_examples'])} validation masks: mIoU "
            f"{metrics['fidelity/miou']:.3f} ({100 * metrics['fidelity/fraction_of_ceiling']:.0f}"
            f"% of the ceiling {metrics['fidelity/ceiling_miou']:.3f}); floors: null condition "
            f"{metrics['fidelity/null_miou']:.3f}, ground truth vs other masks "
            f"{metrics['fidelity/mismatched_miou']:.3f}")


def log(metrics: Dict[str, float]) -> None:
    logging.info("%s", describe(metrics))
