"""save_params / load_params: orbax params + options.json."""
import json

import numpy as np
import pytest

from glide_jax.convert import load_params, save_params


def test_round_trip(tmp_path):
    params = {"input_blocks_0": {"layers_0": {"kernel": np.arange(24, dtype=np.float32).reshape(
        2, 3, 2, 2), "bias": np.ones(2, np.float32)}}, "positional_embedding": np.zeros(
        (4, 8), np.float32)}
    options = {"image_size": 16, "channel_mult": "1,2", "family": "glide", "attn": (1, 2)}
    out = save_params(tmp_path / "run", params, options)
    assert json.loads((tmp_path / "run" / "options.json").read_text())["attn"] == [1, 2]
    loaded, loaded_options = load_params(out)
    assert loaded_options["channel_mult"] == "1,2"
    np.testing.assert_array_equal(loaded["input_blocks_0"]["layers_0"]["kernel"],
                                  params["input_blocks_0"]["layers_0"]["kernel"])
    np.testing.assert_array_equal(loaded["positional_embedding"], params["positional_embedding"])
    with pytest.raises(FileExistsError, match="already exists"):
        save_params(out, params, options)


def test_not_a_params_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a converted-params directory"):
        load_params(tmp_path)
