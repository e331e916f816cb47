"""PITI stages on the demo model: stage 1 leaves the decoder bit-identical, stage 2 moves it;
and the demo's phases run end to end through main (a few steps each: the demo's small task
encoder keeps this within CI's budget)."""
import jax
import numpy as np

from glide_jax import saved_params
from glide_jax.train import config_lib, train
from tests.train.conftest import one_device, load_config, run_main


def _phase(name, steps, init_from=""):
    config = load_config("demo")
    with config.unlocked():
        config.stages[name].train.num_steps = steps
        config.train.batch_size = 8
        config.sample_grid.num_images = 0
        config.checkpoint.async_save = False
        config.optim.warmup_steps = 0
        config.model.dropout = 0.1   # PITI keeps dropout active in the frozen decoder
        config.init.from_workdir = init_from
        config.init.from_workdir_params = "params"
    return config_lib.resolve(config, name)


def _leaves_equal(a, b):
    return [np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]


def test_stage1_freezes_decoder_and_stage2_trains_it(tmp_path):
    # Stage 1 starts from a trained decoder, as in PITI: from a fresh one (zero-initialised output
    # convs) the encoder's gradient would be exactly zero.
    dirs = {name: str(tmp_path / name) for name in ("pretrain", "stage1", "stage2")}
    train.train_phase(_phase("pretrain", 2), dirs["pretrain"], one_device())
    train.train_phase(_phase("stage1", 2, dirs["pretrain"]), dirs["stage1"], one_device())
    train.train_phase(_phase("stage2", 2, dirs["stage1"]), dirs["stage2"], one_device())
    before, s1, s2 = (saved_params.load_params(dirs[n], "params")
                      for n in ("pretrain", "stage1", "stage2"))

    assert all(_leaves_equal(s1["decoder"], before["decoder"]))   # stage 1: decoder untouched
    assert not any(_leaves_equal(s1["encoder"], before["encoder"]))  # ... every encoder leaf moves
    assert not all(_leaves_equal(s2["decoder"], s1["decoder"]))     # stage 2: decoder trains
    assert not all(_leaves_equal(s2["encoder"], s1["encoder"]))


def test_demo_phases_end_to_end(tmp_path):
    result = run_main(["--config=configs/demo.py", f"--workdir={tmp_path}",
                       "--config.stages.pretrain.train.num_steps=2",
                       "--config.stages.stage1.train.num_steps=2",
                       "--config.stages.stage2.train.num_steps=2",
                       "--config.sample_grid.steps=2"], timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    for phase in ("pretrain", "stage1", "stage2"):
        assert saved_params.latest_step(str(tmp_path / phase)) == 2
        assert (tmp_path / phase / "samples" / f"{phase}_final.png").exists()


def test_eval_reports_how_much_the_condition_helps():
    from glide_jax.train.evaluate import evaluate
    from glide_jax.train.setup import build, initial_state
    setup = build(_phase("stage2", 1), one_device())
    fresh = initial_state(setup).params
    # A fresh ADM decoder outputs exactly zero (zero-initialised output convs): no gain.
    metrics = evaluate(setup, fresh, 1, 8)
    assert abs(metrics["eval/cond_gain"]) < 1e-8
    np.testing.assert_allclose(metrics["eval/mse_null"], metrics["eval/mse"], rtol=1e-7)
    # With every weight perturbed the prediction depends on the condition; the gain is the
    # difference of the two errors at the same t and noise.
    leaves, treedef = jax.tree.flatten(fresh)
    keys = jax.random.split(jax.random.PRNGKey(3), len(leaves))
    noisy = jax.tree.unflatten(treedef, [x + 0.05 * jax.random.normal(k, x.shape)
                                         for x, k in zip(leaves, keys)])
    metrics = evaluate(setup, noisy, 1, 8)
    assert metrics["eval/cond_gain"] != 0.0
    np.testing.assert_allclose(metrics["eval/cond_gain"],
                               metrics["eval/mse_null"] - metrics["eval/mse"], atol=1e-6)
    # per quarter of t as the other terms (quarters without a sample in the batch are left out)
    assert any(k.startswith("eval/cond_gain_q") for k in metrics)
