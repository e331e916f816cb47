"""Timestep samplers: the jitted batch update vs a NumPy re-statement of the official one."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glide_jax.diffusion import (LossSecondMomentSampler, UniformSampler,
                                 create_named_schedule_sampler)


class NumpyLossSecondMoment:
    """PITI's LossSecondMomentResampler update and weights, restated with plain NumPy."""

    def __init__(self, num_timesteps, history=10, uniform_prob=0.001):
        self.history = np.zeros((num_timesteps, history))
        self.counts = np.zeros(num_timesteps, dtype=np.int64)
        self.size, self.per_term, self.uniform_prob = num_timesteps, history, uniform_prob

    def weights(self):
        if not (self.counts == self.per_term).all():
            return np.ones(self.size)
        w = np.sqrt(np.mean(self.history ** 2, axis=-1))
        w /= w.sum()
        return w * (1 - self.uniform_prob) + self.uniform_prob / self.size

    def update(self, ts, losses):
        for t, loss in zip(ts, losses):
            if self.counts[t] == self.per_term:
                self.history[t, :-1] = self.history[t, 1:]
                self.history[t, -1] = loss
            else:
                self.history[t, self.counts[t]] = loss
                self.counts[t] += 1


@pytest.mark.parametrize("num_timesteps, batch", [(5, 8), (7, 30), (1000, 64)])
def test_scripted_stream_matches_sequential_update(num_timesteps, batch):
    sampler = LossSecondMomentSampler(num_timesteps)
    reference = NumpyLossSecondMoment(num_timesteps)
    state = sampler.init_state()
    update, weights = jax.jit(sampler.update), jax.jit(sampler.weights)
    rng = np.random.default_rng(num_timesteps)
    warm_seen = False
    rounds = 12 if num_timesteps < 100 else 3
    for step in range(rounds):
        # Heavily repeated timesteps in one batch, plus full sweeps so that warm-up happens.
        if step % 3 == 2:
            ts = np.resize(np.arange(num_timesteps), batch * 4)[: batch * 4]
        else:
            ts = rng.integers(0, min(num_timesteps, 3), size=batch)
        losses = rng.random(ts.shape[0]).astype(np.float32) * 2
        state = update(state, jnp.asarray(ts), jnp.asarray(losses))
        reference.update(ts, losses)
        np.testing.assert_array_equal(np.asarray(state["counts"]), reference.counts)
        np.testing.assert_array_equal(np.asarray(state["history"]),
                                      reference.history.astype(np.float32))
        w_ref = reference.weights()
        np.testing.assert_allclose(np.asarray(weights(state)), w_ref, rtol=2e-6)
        warm_seen |= bool((reference.counts == 10).all())
    assert warm_seen == (num_timesteps < 100)


def test_weights_uniform_before_warmup_and_importance_weights():
    sampler = LossSecondMomentSampler(4)
    state = sampler.init_state()
    t, w = jax.jit(sampler.sample, static_argnums=2)(state, jax.random.PRNGKey(0), 16)
    assert t.dtype == jnp.int32 and np.all(np.asarray(w) == 1.0)
    # Warm with losses whose second moments are 1, 2, 3, 4.
    ts = np.repeat(np.arange(4), 10)
    state = jax.jit(sampler.update)(state, ts, np.sqrt(ts + 1.0))
    p = np.sqrt(np.arange(1, 5)) / np.sqrt(np.arange(1, 5)).sum() * 0.999 + 0.001 / 4
    np.testing.assert_allclose(sampler.weights(state), p, rtol=1e-6)
    t, w = jax.jit(sampler.sample, static_argnums=2)(state, jax.random.PRNGKey(1), 20000)
    np.testing.assert_allclose(w, 1.0 / (4 * p[np.asarray(t)]), rtol=1e-5)
    freq = np.bincount(np.asarray(t), minlength=4) / 20000
    np.testing.assert_allclose(freq, p, atol=0.015)


def test_uniform_sampler_and_names():
    sampler = create_named_schedule_sampler("uniform", 10)
    assert isinstance(sampler, UniformSampler) and sampler.init_state() == {}
    t, w = sampler.sample({}, jax.random.PRNGKey(0), 1000)
    assert 0 <= int(t.min()) and int(t.max()) < 10 and np.all(np.asarray(w) == 1.0)
    assert isinstance(create_named_schedule_sampler("loss-second-moment", 10),
                      LossSecondMomentSampler)
    with pytest.raises(ValueError, match="unknown schedule sampler 'importance'"):
        create_named_schedule_sampler("importance", 10)


def test_state_is_a_checkpointable_pytree():
    sampler = LossSecondMomentSampler(6)
    state = sampler.init_state()
    leaves = jax.tree_util.tree_leaves(state)
    assert [leaf.shape for leaf in leaves] == [(6,), (6, 10)]
    restored = jax.tree_util.tree_map(np.asarray, state)
    assert jax.tree_util.tree_structure(restored) == jax.tree_util.tree_structure(state)
