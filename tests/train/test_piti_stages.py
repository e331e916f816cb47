"""The demo's PITI recipe through main, once: its decoder starts from the shipped prior (PITI's
GLIDE -> decoder init), stage 1 trains the encoder and leaves that decoder bit-identical, stage 2
trains both; grids and the mask-fidelity report are written. And the eval's condition gain."""
import json

import jax
import numpy as np

from glide_jax import convert, pretrained, saved_params
from glide_jax.train import config_lib
from tests.train.conftest import load_config, one_device, run_main


def _leaves_equal(a, b):
    return [np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]


def test_demo_recipe_end_to_end(tmp_path):
    result = run_main(["--config=configs/demo.py", f"--workdir={tmp_path}",
                       "--config.stages.stage1.train.num_steps=2",
                       "--config.stages.stage2.train.num_steps=2",
                       "--config.stages.stage2.eval.fidelity_examples=8",
                       "--config.eval.batch_size=8",
                       "--config.sample_grid.num_images=2", "--config.sample_grid.steps=2",
                       "--config.data.num_workers=0"], timeout=540)
    assert result.returncode == 0, result.stderr[-3000:]
    for phase in ("stage1", "stage2"):
        assert saved_params.latest_step(str(tmp_path / phase)) == 2
        assert (tmp_path / phase / "samples" / f"{phase}_final.png").exists()
    assert "mask fidelity on 8 validation masks: mIoU" in result.stdout
    report = json.loads((tmp_path / "stage2" / "eval" / "fidelity_step_000002.json").read_text())
    assert report["fidelity/ceiling_miou"] > 0.85 and 0 <= report["fidelity/miou"] <= 1

    options = saved_params.read_record(str(tmp_path / "stage1"))["options"]
    assert options["encoder_spatial"]
    prior, _ = convert.glide_to_piti_decoder(
        convert.load_state_dict(pretrained.demo_prior_files()["weights"]),
        dict(options, encoder_spatial=False))
    s1 = saved_params.load_params(str(tmp_path / "stage1"), "params")
    s2 = saved_params.load_params(str(tmp_path / "stage2"), "params")
    spatial = sorted(k for k in s1["decoder"] if k.startswith("spatial_proj"))
    assert spatial == ["spatial_proj_0", "spatial_proj_1", "spatial_proj_2"]
    official = {k: v for k, v in s1["decoder"].items() if k not in spatial}
    assert all(_leaves_equal(official, prior))                    # stage 1: the prior, untouched
    # ... while the spatial path, zero at the start, trains with the encoder.
    assert all(np.abs(s1["decoder"][k]["kernel"]).max() > 0 for k in spatial)
    assert not all(_leaves_equal(s2["decoder"], s1["decoder"]))   # stage 2: the decoder trains
    assert not all(_leaves_equal(s2["encoder"], s1["encoder"]))
    # Stage 1 moves the encoder: its last layer norm at least (a fresh encoder's is ones).
    assert not np.allclose(s1["encoder"]["final_ln"]["scale"], 1.0)


def test_eval_reports_how_much_the_condition_helps():
    from glide_jax.train.evaluate import evaluate
    from glide_jax.train.setup import build, initial_state
    config = load_config("demo")
    with config.unlocked():
        config.init.torch_checkpoint, config.init.from_scratch = "", True
        config.sample_grid.num_images = 0
    setup = build(config_lib.resolve(config, "stage2"), one_device())
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
    assert any(k.startswith("eval/cond_gain_q") for k in metrics)
