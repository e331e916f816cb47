"""PITI stages on the demo model: stage 1 leaves the decoder bit-identical, stage 2 moves it;
and the demo's phases run end to end through main. Slow: PITI's task encoder is full size."""
import jax
import numpy as np
import pytest

from glide_jax.train import checkpoints, config_lib, train
from tests.train.conftest import load_config, run_main


def _phase(name, steps):
    config = load_config("demo")
    with config.unlocked():
        config.stages[name].train.num_steps = steps
        config.train.batch_size = 8
        config.sample_grid.num_images = 0
        config.checkpoint.async_save = False
        config.model.dropout = 0.1   # PITI keeps dropout active in the frozen decoder
    return config_lib.resolve(config, name)


@pytest.mark.slow
def test_stage1_freezes_decoder_and_stage2_trains_it(tmp_path):
    train.train_phase(_phase("stage1", 2), str(tmp_path / "s1"))
    state = checkpoints.numpy_state(checkpoints.create_manager(str(tmp_path / "s1"),
                                                               read_only=True), 2)
    s2 = _phase("stage2", 2)
    with s2.unlocked():
        s2.init.from_workdir = str(tmp_path / "s1")
        s2.init.from_workdir_params = "params"
    train.train_phase(s2, str(tmp_path / "s2"))
    after = checkpoints.load_params(str(tmp_path / "s2"), "params")

    from glide_jax import models
    fresh = jax.device_get(jax.jit(lambda r: models.init_params(
        config_lib.model_options(s2), r))(jax.random.PRNGKey(0)))
    for a, b in zip(jax.tree.leaves(state["params"]["decoder"]),
                    jax.tree.leaves(fresh["decoder"])):
        np.testing.assert_array_equal(a, b)          # stage 1: decoder untouched
    assert any(not np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(state["params"]["encoder"]), jax.tree.leaves(fresh["encoder"])))
    assert any(not np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(after["decoder"]), jax.tree.leaves(state["params"]["decoder"])))


@pytest.mark.slow
def test_demo_phases_end_to_end(tmp_path):
    result = run_main(["--config=configs/demo.py", f"--workdir={tmp_path}",
                       "--config.stages.pretrain.train.num_steps=2",
                       "--config.stages.stage1.train.num_steps=2",
                       "--config.stages.stage2.train.num_steps=2",
                       "--config.sample_grid.steps=2"], timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    for phase in ("pretrain", "stage1", "stage2"):
        assert checkpoints.latest_step(str(tmp_path / phase)) == 2
        assert (tmp_path / phase / "samples" / f"{phase}_final.png").exists()
