"""Configs: every file loads and validates, stages resolve, bad keys and contradictions fail."""
import pytest

from glide_jax.train import config_lib
from tests.train.conftest import ROOT, load_config, run_main

CONFIGS = sorted(p.stem for p in (ROOT / "configs").glob("*.py"))


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_validates(name):
    """As their docstrings run them: PITI configs with GLIDE's checkpoint for the decoder (the
    demo names the shipped prior itself)."""
    config = load_config(name)
    overrides = {}
    if (config.model.family == "piti" and not config.init.from_scratch
            and not config.init.torch_checkpoint):
        overrides = {"init.torch_checkpoint": "/ckpt/base.pt"}
        with pytest.raises(config_lib.ConfigError, match="random weights"):
            config_lib.resolve(config, config_lib.phase_names(config)[0])
    for phase in config_lib.phase_names(config):
        config_lib.resolve(config, phase, overrides)


GLIDE_BASE = {"init.torch_checkpoint": "/ckpt/base.pt"}


def test_piti_stages_follow_the_recipe():
    config = load_config("coco_stuff", "stage1")
    config.unlock()
    config.init.torch_checkpoint = "/ckpt/base.pt"
    config.lock()
    s1 = config_lib.resolve(config, config_lib.stage_name(config))
    assert (s1.train.trainable, s1.data.uncond_p, s1.optim.learning_rate) == ("encoder", 0.0, 3.5e-5)
    s1c = config_lib.resolve(config, "1c")
    assert (s1c.train.trainable, s1c.data.uncond_p, s1c.optim.learning_rate) == (
        "encoder", 0.2, 2e-5)
    s2 = config_lib.resolve(config, config_lib.stage_name(config, "2"))
    assert (s2.train.trainable, s2.data.uncond_p, s2.train.schedule_sampler) == (
        "all", 0.2, "loss-second-moment")
    assert s2.sample_grid.guidance_scale == 1.5 and s2.optim.b2 == 0.999


def test_command_line_wins_over_the_stage():
    config = load_config("coco_stuff", "stage2")
    resolved = config_lib.resolve(config, "stage2", {"optim.learning_rate": 1e-5,
                                                     "stage": "stage2", **GLIDE_BASE})
    assert resolved.optim.learning_rate == 1e-5 and resolved.train.trainable == "all"


def test_unknown_key_is_rejected_by_the_lock():
    config = load_config("demo")
    with pytest.raises(AttributeError, match="lr"):
        config.optim.lr = 1.0
    with pytest.raises(config_lib.ConfigError, match="stage 'stage9'"):
        config_lib.stage_name(config, "stage9")


@pytest.mark.parametrize("updates,match", [
    ({"data.image_size": 64}, "data.image_size"),
    ({"optim.name": "adam", "optim.weight_decay": 0.1}, "optim.weight_decay"),
    ({"train.trainable": "encoder"}, "train.trainable"),
    ({"train.microbatches": 3}, "train.microbatches"),
    ({"checkpoint.best_metric": "eval/loss"}, "checkpoint.best_metric"),
    ({"init.torch_checkpoint": "/x/base.pt", "init.torch_part": ""}, "init.torch_part"),
    ({"init.torch_part": "glide_decoder"}, "init.torch_part"),
    ({"optim.schedule": "cosine"}, "optim.decay_steps"),
    ({"train.extra_losses": ("vgg",)}, "train.extra_losses"),
    ({"sample_grid.sampler": "plms"}, "sample_grid.sampler"),
])
def test_contradictions_name_the_key(updates, match):
    config = load_config("glide_base", "tiny")
    for key, value in updates.items():
        section, leaf = key.split(".")
        config[section][leaf] = value
    with pytest.raises(config_lib.ConfigError, match=match.replace(".", r"\.")):
        config_lib.validate_config(config)


def test_upsampler_condition_dropout_is_a_contradiction():
    config = load_config("coco_stuff_upsample")
    config.data.uncond_p = 0.2
    config.init.torch_checkpoint = "/ckpt/upsample.pt"
    with pytest.raises(config_lib.ConfigError, match=r"data\.uncond_p"):
        config_lib.validate_config(config)


def test_main_rejects_unknown_override_before_running(tmp_path):
    result = run_main(["--config=configs/glide_base.py:tiny", f"--workdir={tmp_path}",
                       "--config.optim.lr=1e-3"], timeout=120)
    assert result.returncode != 0
    assert "lr" in result.stderr and not (tmp_path / "checkpoints").exists()
    result = run_main(["--config=configs/glide_base.py:tiny", f"--workdir={tmp_path}",
                       "--config.optim.name=adam", "--config.optim.weight_decay=0.1"], timeout=120)
    assert result.returncode != 0 and "optim.weight_decay" in result.stderr
    assert not (tmp_path / "checkpoints").exists()
