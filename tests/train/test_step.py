"""The train step: gradients on a (data, fsdp) mesh equal one device's, microbatched gradients
equal full-batch ones, params really shard, the loss goes down, frozen parts stay frozen."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from glide_jax import parallel
from glide_jax.data import pipeline as input_pipeline
from glide_jax.train import config_lib, sharding
from glide_jax.train import state as state_lib
from glide_jax.train import step as step_lib
from glide_jax.train.setup import build, initial_state
from glide_jax.train.step import MODEL_BATCH_KEYS
from tests.train.conftest import tiny_config


def _host_batches(config, setup, n):
    it = input_pipeline.create_train_iterator(config.data, config.train.batch_size,
                                              seed=config.seed, tokenizer=setup.tokenizer)
    return [next(it) for _ in range(n)]


def _gradients(config, devices, host_batch):
    """(loss, grads as numpy, the setup) of the first step on `devices`, jit with the run's
    shardings (the train step's own gradient function)."""
    setup = build(config, devices)
    state = initial_state(setup)
    grad_fn = jax.jit(step_lib.make_grad_fn(setup.model, setup.diffusion, setup.sampler,
                                            setup.options, setup.config),
                      in_shardings=(setup.state_shardings, parallel.batch_sharding(setup.mesh)))
    loss, _, _, grads = grad_fn(state, parallel.global_batch(host_batch, setup.mesh,
                                                             MODEL_BATCH_KEYS))
    return float(loss), jax.tree.map(np.asarray, grads), setup, state


def _no_dropout(**train):
    config = tiny_config(**train)
    config.model.dropout = 0.0
    return config


def test_data_fsdp_mesh_gives_the_gradients_of_one_device():
    """Mean, not sum, over the 8 batch shards: gradients (not Adam's scale-free updates) agree."""
    config = _no_dropout(schedule_sampler="loss-second-moment")
    config.mesh.fsdp_min_size = 1024
    config.mesh.data, config.mesh.fsdp = 4, 2
    config_lib.validate_config(config)
    single = _no_dropout(schedule_sampler="loss-second-moment")
    single.mesh.data, single.mesh.fsdp = 1, 1
    batch = _host_batches(config, build(config), 1)[0]

    loss8, grads8, setup8, state8 = _gradients(config, jax.devices()[:8], batch)
    loss1, grads1, _, _ = _gradients(single, jax.devices()[:1], batch)
    np.testing.assert_allclose(loss8, loss1, rtol=2e-5)
    flat8, flat1 = jax.tree.leaves(grads8), jax.tree.leaves(grads1)
    norm = np.sqrt(sum(np.sum(g ** 2) for g in flat1))
    for a, b in zip(flat8, flat1):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * norm)
    assert norm > 0
    # The state really is sharded over fsdp, Adam's moments with it.
    sharded = [x for x in jax.tree.leaves(state8.params) if not x.sharding.is_fully_replicated]
    assert sharded, "no parameter is sharded over fsdp"
    big = max(jax.tree.leaves(state8.params), key=lambda x: x.size)
    assert "fsdp" in tuple(big.sharding.spec) and len(big.sharding.device_set) == 8
    mu = jax.tree.leaves(state8.opt_state)[1:]
    assert any(not m.sharding.is_fully_replicated for m in mu if hasattr(m, "sharding"))


def test_microbatched_gradients_equal_full_batch_gradients():
    full = _no_dropout(schedule_sampler="loss-second-moment")
    full.mesh.data = 2
    micro = _no_dropout(schedule_sampler="loss-second-moment", microbatches=4)
    micro.mesh.data = 2
    batch = _host_batches(full, build(full, jax.devices()[:2]), 1)[0]
    loss_f, grads_f, _, _ = _gradients(full, jax.devices()[:2], batch)
    loss_m, grads_m, _, _ = _gradients(micro, jax.devices()[:2], batch)
    np.testing.assert_allclose(loss_m, loss_f, rtol=1e-5)
    norm = np.sqrt(sum(np.sum(g ** 2) for g in jax.tree.leaves(grads_f)))
    for a, b in zip(jax.tree.leaves(grads_m), jax.tree.leaves(grads_f)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * norm)


def test_loss_goes_down_on_a_fixed_batch():
    config = _no_dropout()
    config.mesh.data = 1
    setup = build(config, jax.devices()[:1])
    state = initial_state(setup)
    batch = parallel.global_batch(_host_batches(config, setup, 1)[0], setup.mesh,
                                  MODEL_BATCH_KEYS)
    key = jax.random.PRNGKey(0)
    loss = lambda s: float(jnp.mean(setup.eval_step(s.params, batch, key)["terms"]["loss"]))  # noqa
    before = loss(state)
    for _ in range(40):
        state, _ = setup.train_step(state, batch)
    after = loss(state)
    assert after < 0.7 * before, (before, after)


def test_leaf_spec_rule():
    assert sharding.leaf_spec((3, 3, 64, 128), 2, 1000) == jax.sharding.PartitionSpec(
        None, None, None, "fsdp")
    assert sharding.leaf_spec((96,), 2, 1000) == jax.sharding.PartitionSpec()
    assert sharding.leaf_spec((7, 999), 2, 10) == jax.sharding.PartitionSpec()
    assert sharding.leaf_spec((512, 64), 1, 10) == jax.sharding.PartitionSpec()


def test_frozen_part_gets_no_update_but_trains_the_rest():
    """PITI stage 1: only the encoder moves (adam + clipping + weight decay), bit for bit."""
    config = tiny_config()
    config.optim.name, config.optim.weight_decay, config.optim.grad_clip_norm = "adamw", 0.1, 0.5
    config.optim.warmup_steps = 2
    params = {"encoder": {"w": jnp.ones((4, 4))}, "decoder": {"w": jnp.ones((4,)),
                                                             "b": jnp.full((3,), 2.0)}}
    config.train.trainable = "encoder"
    tx = state_lib.create_optimizer(config, params)
    opt_state = tx.init(params)
    p = params
    for _ in range(3):
        grads = jax.grad(lambda q: sum(jnp.sum(x ** 2) for x in jax.tree.leaves(q)))(p)
        updates, opt_state = tx.update(grads, opt_state, p)
        p = optax.apply_updates(p, updates)
    np.testing.assert_array_equal(p["decoder"]["w"], params["decoder"]["w"])
    np.testing.assert_array_equal(p["decoder"]["b"], params["decoder"]["b"])
    assert not np.allclose(p["encoder"]["w"], params["encoder"]["w"])
    mask = state_lib.trainable_mask(params, "encoder")
    assert mask == {"encoder": {"w": True}, "decoder": {"w": False, "b": False}}
    with pytest.raises(ValueError, match="no 'encoder' params"):
        state_lib.param_labels({"w": jnp.ones(2)}, "encoder")


def test_non_finite_step_leaves_params_optimizer_ema_and_sampler_unchanged():
    config = tiny_config(schedule_sampler="loss-second-moment")
    config.mesh.data = 1
    setup = build(config, jax.devices()[:1])
    state = initial_state(setup)
    host = _host_batches(config, setup, 2)
    state, _ = setup.train_step(state, parallel.global_batch(host[0], setup.mesh,
                                                             MODEL_BATCH_KEYS))
    before = jax.tree.map(np.asarray, state)
    bad = dict(host[1], image=np.full_like(host[1]["image"], np.nan))
    after, out = setup.train_step(state, parallel.global_batch(bad, setup.mesh,
                                                               MODEL_BATCH_KEYS))
    assert float(out["skipped"]) == 1.0 and int(out["nonfinite_step"]) == 2
    assert int(after.step) == int(before.step) + 1
    for name in ("params", "opt_state", "ema_params", "sampler_state", "rng"):
        for a, b in zip(jax.tree.leaves(getattr(before, name)),
                        jax.tree.leaves(getattr(after, name))):
            np.testing.assert_array_equal(a, np.asarray(b), err_msg=name)


def test_p2_weighting_scales_the_mse_term_by_its_timestep_weight():
    """train.p2_gamma: loss = mean(mse * (k + SNR(t))^-gamma + vb); the logged mse stays raw."""
    config = _no_dropout(p2_gamma=1.0, p2_k=1.0)
    setup = build(config)
    batch = _host_batches(config, setup, 1)[0]
    loss, terms, t, _ = jax.jit(step_lib.make_grad_fn(
        setup.model, setup.diffusion, setup.sampler, setup.options, setup.config))(
        initial_state(setup), parallel.global_batch(batch, setup.mesh, MODEL_BATCH_KEYS))
    abar = setup.diffusion.alphas_cumprod[np.asarray(t)]
    w = 1.0 / (1.0 + abar / (1.0 - abar))
    terms = jax.tree.map(np.asarray, terms)
    expected = np.mean(terms["mse"] * w + (terms["loss"] - terms["mse"]))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    assert not np.isclose(float(loss), np.mean(terms["loss"]), rtol=1e-3)
    np.testing.assert_array_equal(np.asarray(setup.diffusion.p2_weight(jnp.arange(5), 0.0)),
                                  np.ones(5, np.float32))
