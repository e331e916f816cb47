"""Where a run's first params come from: an official-format .pt (init.torch_checkpoint), and the
refusal to train a PITI decoder from random weights unless asked."""
import collections

import jax
import numpy as np
import pytest

from glide_jax import convert, saved_params
from glide_jax.models.options import tiny_options
from glide_jax.pipelines.tiny import random_params
from glide_jax.train import config_lib, train
from glide_jax.train.setup import build, initial_state
from tests.train.conftest import one_device, load_config, tiny_config

try:
    import torch
except ImportError:  # the [torch] extra is optional
    torch = None


def _official_pt(options, path, seed=3):
    """An official-format GLIDE state dict (PyTorch names, order and layouts) saved with torch."""
    state = convert.flax_to_torch(random_params(options, seed), options)
    torch.save(collections.OrderedDict((k, torch.from_numpy(np.ascontiguousarray(v)))
                                       for k, v in state.items()), path)
    return state


@pytest.mark.skipif(torch is None, reason="needs the [torch] extra")
def test_torch_checkpoint_initialises_the_run_and_trains_a_step(tmp_path):
    config = tiny_config(num_steps=1, log_every=1)
    options = config_lib.model_options(config)
    state = _official_pt(options, tmp_path / "base.pt")
    config.init.torch_checkpoint, config.init.torch_part = str(tmp_path / "base.pt"), "full"
    config.checkpoint.every = 1
    resolved = config_lib.resolve(config)
    start = initial_state(build(resolved))
    loaded = convert.flax_to_torch(jax.device_get(start.params), options)
    assert list(loaded) == list(state)
    for key, value in state.items():
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)
    train.train_phase(resolved, str(tmp_path / "run"), one_device())
    after = saved_params.load_params(str(tmp_path / "run"), "params")
    moved = [np.max(np.abs(a - b)) for a, b in zip(
        jax.tree.leaves(after), jax.tree.leaves(jax.device_get(start.params)))]
    assert 0 < max(moved) < 0.1   # one Adam step of lr 1e-3 away from the file's weights


@pytest.mark.skipif(torch is None, reason="needs the [torch] extra")
def test_glide_checkpoint_initialises_a_piti_decoder(tmp_path):
    """PITI's recipe: GLIDE's text-side tensors dropped, the rest loaded into the decoder."""
    piti = dict(tiny_options("piti-base-mask"), encoder_width=64, encoder_layers=1,
                encoder_heads=4, xf_width=512)
    glide = dict(tiny_options("glide-base"), xf_width=64, xf_heads=4)
    state = _official_pt(glide, tmp_path / "base.pt")
    config = load_config("demo")
    with config.unlocked():
        config.model.update({k: piti[k] for k in ("image_size", "num_channels", "channel_mult",
                                                  "num_res_blocks", "attention_resolutions",
                                                  "num_head_channels")})
        config.model.update(learn_sigma=True, predict_xstart=False)  # GLIDE's 6-channel head
        config.data.image_size = piti["image_size"]
        config.init.torch_checkpoint = str(tmp_path / "base.pt")
        config.init.torch_part = "glide-decoder"
        config.init.from_scratch = False
        config.model.encoder_spatial = False  # the official decoder (the demo adds a path)
    resolved = config_lib.resolve(config, "stage1")
    setup = build(resolved)
    decoder = convert.flax_to_torch(jax.device_get(initial_state(setup).params["decoder"]),
                                    setup.options,
                                    part="decoder")
    kept = {k: v for k, v in state.items() if not convert.is_glide_text_key(k)}
    assert set(decoder) == set(kept)
    for key, value in kept.items():
        np.testing.assert_array_equal(decoder[key], value, err_msg=key)


def test_piti_decoder_from_nothing_is_refused_unless_asked():
    config = load_config("demo")
    with config.unlocked():
        config.init.torch_checkpoint, config.init.from_scratch = "", False
    with pytest.raises(config_lib.ConfigError, match="random weights.*glide-decoder"):
        config_lib.resolve(config, "stage1")
    with config.unlocked():
        config.init.from_scratch = True
    config_lib.resolve(config, "stage1")
