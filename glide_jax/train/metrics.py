"""Training and evaluation metrics as clu.metrics collections.

A step returns a collection built from its outputs (inside jit); the host merges the
collections of the steps since the last log (`merge`, on device, no sync) and computes them when
it writes (`compute`). Per-sample loss terms are averaged over samples, overall (`<term>_mean`
in training, `<term>` in evaluation) and per quarter of the timestep range (`<term>_q0` ..
`<term>_q3`).
"""
from __future__ import annotations

from typing import Sequence

import flax
import jax
import jax.numpy as jnp
from clu import metrics

from glide_jax.train.step import NUM_QUARTILES

NO_STEP = int(jnp.iinfo(jnp.int32).max)


@flax.struct.dataclass
class Sum(metrics.Metric):
    """Sum of a scalar output over steps."""
    total: jnp.ndarray

    @classmethod
    def from_model_output(cls, values, **_):
        return cls(total=jnp.sum(jnp.asarray(values, jnp.float32)))

    def merge(self, other):
        return type(self)(total=self.total + other.total)

    def compute(self):
        return self.total


@flax.struct.dataclass
class Min(metrics.Metric):
    """Smallest value of an int scalar output over steps (NO_STEP when none)."""
    value: jnp.ndarray

    @classmethod
    def from_model_output(cls, values, **_):
        return cls(value=jnp.min(jnp.asarray(values, jnp.int32)))

    def merge(self, other):
        return type(self)(value=jnp.minimum(self.value, other.value))

    def compute(self):
        return self.value


def _quartile_mean(name: str, quartile: int):
    """Mean of the per-sample output `name` over the samples whose timestep is in `quartile`."""

    @flax.struct.dataclass
    class QuartileMean(metrics.Average):
        @classmethod
        def from_model_output(cls, **outputs):
            sel = (outputs["t_quartile"] == quartile).astype(jnp.float32)
            return cls(total=jnp.sum(outputs[name] * sel), count=jnp.sum(sel))

    return QuartileMean


def _per_sample_mean(name: str):
    @flax.struct.dataclass
    class SampleMean(metrics.Average):
        @classmethod
        def from_model_output(cls, **outputs):
            values = jnp.asarray(outputs[name], jnp.float32)
            return cls(total=jnp.sum(values), count=jnp.asarray(values.size, jnp.float32))

    return SampleMean


def _term_fields(terms: Sequence[str], mean_suffix: str) -> dict:
    fields = {}
    for name in terms:
        fields[name + mean_suffix] = _per_sample_mean(name)
        for q in range(NUM_QUARTILES):
            fields[f"{name}_q{q}"] = _quartile_mean(name, q)
    return fields


def train_collection(terms: Sequence[str]) -> type:
    """From the train step's outputs (glide_jax.train.step): loss (the weighted objective),
    grad_norm, learning_rate, skipped, nonfinite_step, t_quartile [B], per-sample terms [B]."""
    fields = dict(loss=metrics.Average.from_output("loss"),
                  grad_norm=metrics.Average.from_output("grad_norm"),
                  learning_rate=metrics.LastValue.from_output("learning_rate"),
                  skipped_steps=Sum.from_output("skipped"),
                  first_nonfinite_step=Min.from_output("nonfinite_step"))
    fields.update(_term_fields(terms, "_mean"))
    return metrics.Collection.create(**fields)


def eval_collection(terms: Sequence[str]) -> type:
    """From the eval step's outputs: t_quartile [B] and each per-sample term [B]."""
    return metrics.Collection.create(**_term_fields(terms, ""))


class Accumulator:
    """Merges step outputs into a collection on device (one compiled call per step, no host
    sync) and computes them on demand: {prefix/name: float}."""

    def __init__(self, collection: type, prefix: str):
        self.collection, self.prefix = collection, prefix
        self.value = None

        def first(outputs):
            return collection.single_from_model_output(**_flat(outputs))

        def add(acc, outputs):
            return acc.merge(collection.single_from_model_output(**_flat(outputs)))
        self._first, self._add = jax.jit(first), jax.jit(add)

    def add(self, outputs) -> None:
        self.value = self._first(outputs) if self.value is None else self._add(self.value,
                                                                                 outputs)

    def compute(self, reset: bool = True) -> dict:
        if self.value is None:
            return {}
        values = jax.device_get(self.value.compute())
        if reset:
            self.value = None
        return {f"{self.prefix}/{k}": v.item() if hasattr(v, "item") else v
                for k, v in values.items()}


def _flat(outputs) -> dict:
    flat = {k: v for k, v in outputs.items() if k != "terms"}
    flat.update(outputs.get("terms", {}))
    return flat
