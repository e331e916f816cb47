"""Timestep samplers for training (PITI's resample.py) with functional, jit-friendly state.

A sampler is a static description; its mutable part is a pytree `state` that lives in the train
state (and so in checkpoints) and is updated inside the jitted train step:

    state = sampler.init_state()
    t, weights = sampler.sample(state, key, batch_size)   # importance weights 1 / (T p_t)
    ...                                                   # per-sample losses, before weighting
    state = sampler.update(state, t, losses)

Under data parallelism pass the *global* batch of (t, losses) in global batch order: that is the
all-gather order of the official update, which every rank then applies identically.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


def _sample_from_weights(weights, key, batch_size):
    p = weights / jnp.sum(weights)
    t = jax.random.choice(key, weights.shape[0], shape=(batch_size,), p=p)
    importance = 1.0 / (weights.shape[0] * p[t])
    return t.astype(jnp.int32), importance.astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class UniformSampler:
    """Timesteps uniform over [0, num_timesteps); weights all 1. State: {} (nothing)."""
    num_timesteps: int

    def init_state(self) -> dict:
        return {}

    def weights(self, state) -> jax.Array:
        return jnp.ones((self.num_timesteps,), jnp.float32)

    def sample(self, state, key, batch_size: int):
        """(t int32 [batch_size], importance weights float32 [batch_size])."""
        return _sample_from_weights(self.weights(state), key, batch_size)

    def update(self, state, t, losses):
        return state


@dataclasses.dataclass(frozen=True)
class LossSecondMomentSampler:
    """PITI's LossSecondMomentResampler: p_t proportional to sqrt(E[loss_t^2]) over the last
    `history_per_term` losses of each timestep, mixed with `uniform_prob` of uniform; uniform
    until every timestep has a full history.

    State: {"history": float32 [T, history_per_term], "counts": int32 [T]}.
    """
    num_timesteps: int
    history_per_term: int = 10
    uniform_prob: float = 0.001

    def init_state(self) -> dict:
        return {"history": jnp.zeros((self.num_timesteps, self.history_per_term), jnp.float32),
                "counts": jnp.zeros((self.num_timesteps,), jnp.int32)}

    def weights(self, state) -> jax.Array:
        """Unnormalised sampling weights [T] float32."""
        warm = jnp.all(state["counts"] == self.history_per_term)
        w = jnp.sqrt(jnp.mean(state["history"] ** 2, axis=-1))
        w = w / jnp.sum(w)
        w = w * (1 - self.uniform_prob) + self.uniform_prob / self.num_timesteps
        return jnp.where(warm, w, jnp.ones_like(w))

    def sample(self, state, key, batch_size: int):
        """(t int32 [batch_size], importance weights float32 [batch_size])."""
        return _sample_from_weights(self.weights(state), key, batch_size)

    def update(self, state, t, losses) -> dict:
        """Record a batch of per-sample losses, as if appended one by one in batch order.

        Sequentially, each row keeps its last `history_per_term` losses; so the new row of t is
        the tail of (old valid entries ++ this batch's losses for t, in order).
        """
        t = jnp.asarray(t, jnp.int32).reshape(-1)
        losses = jnp.asarray(losses, jnp.float32).reshape(-1)
        size, hist = self.num_timesteps, self.history_per_term
        batch = t.shape[0]
        same = t[:, None] == t[None, :]
        earlier = jnp.arange(batch)[None, :] < jnp.arange(batch)[:, None]
        rank = jnp.sum(same & earlier, axis=1)                    # occurrence index within t
        n_new = jnp.zeros((size,), jnp.int32).at[t].add(1)
        # Only the last `hist` losses of each timestep in the batch can survive.
        skip = jnp.maximum(n_new - hist, 0)
        slot = rank - skip[t]
        rows = jnp.where(slot >= 0, t, size)                      # out of range -> dropped
        tail = jnp.zeros((size, hist), jnp.float32).at[rows, slot].set(losses, mode="drop")
        n_tail = jnp.minimum(n_new, hist)

        counts = state["counts"]
        total = counts + n_tail
        offset = jnp.maximum(total - hist, 0)
        idx = offset[:, None] + jnp.arange(hist)[None, :]        # index into old ++ tail
        from_old = jnp.take_along_axis(state["history"], jnp.clip(idx, 0, hist - 1), axis=1)
        from_tail = jnp.take_along_axis(tail, jnp.clip(idx - counts[:, None], 0, hist - 1),
                                        axis=1)
        merged = jnp.where(idx < counts[:, None], from_old, from_tail)
        valid = jnp.arange(hist)[None, :] < jnp.minimum(total, hist)[:, None]
        history = jnp.where(valid, merged, state["history"])
        return {"history": history, "counts": jnp.minimum(total, hist).astype(jnp.int32)}


def create_named_schedule_sampler(name: str, num_timesteps: int):
    """"uniform" or "loss-second-moment" (history 10, uniform_prob 0.001)."""
    if name == "uniform":
        return UniformSampler(num_timesteps)
    if name == "loss-second-moment":
        return LossSecondMomentSampler(num_timesteps)
    raise ValueError(f"unknown schedule sampler {name!r}, expected 'uniform' or "
                     "'loss-second-moment'")
