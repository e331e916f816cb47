"""python -m glide_jax.convert: to-flax / to-torch / presets."""
import collections
import json
import subprocess
import sys

import numpy as np
import pytest

from glide_jax.convert import load_state_dict
from glide_jax.convert.__main__ import main
from glide_jax.models import PRESETS
from tests.convert.test_with_models import tiny_options
from tests.fixture_utils import fixture_state_dict

try:
    import torch
except ImportError:  # the [torch] extra is optional; tests that need it are skipped without it
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs the [torch] extra")


def _write_pt(state, path):
    torch.save(collections.OrderedDict((k, torch.from_numpy(v)) for k, v in state.items()), path)


def _options_file(tmp_path, name):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(tiny_options(name)))
    return str(path)


@needs_torch
def test_to_flax_then_to_torch_reproduces_the_file(tmp_path, capsys):
    state = fixture_state_dict("glide_text2im_tiny")
    _write_pt({k: v.astype(np.float16) if k.startswith("out.") else v for k, v in state.items()},
              tmp_path / "tiny.pt")
    opts = _options_file(tmp_path, "glide_text2im_tiny")
    assert main(["to-flax", str(tmp_path / "tiny.pt"), "--model", opts,
                 "--out", str(tmp_path / "flax")]) == 0
    assert "207 tensors" in capsys.readouterr().out
    for out in ("back.pt", "back.safetensors"):
        assert main(["to-torch", str(tmp_path / "flax"), "--out", str(tmp_path / out)]) == 0
    original = load_state_dict(tmp_path / "tiny.pt")  # fp16 tensors come back upcast
    for out in ("back.pt", "back.safetensors"):
        back = load_state_dict(tmp_path / out)
        assert set(back) == set(original)
        for k in original:
            np.testing.assert_array_equal(back[k], original[k])
    assert list(load_state_dict(tmp_path / "back.pt")) == list(state)


@needs_torch
def test_piti_encoder_part_and_clear_failure(tmp_path, capsys):
    state = fixture_state_dict("piti_mask_tiny")
    encoder = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    _write_pt(encoder, tmp_path / "enc.pt")
    opts = _options_file(tmp_path, "piti_mask_tiny")
    assert main(["to-flax", str(tmp_path / "enc.pt"), "--model", opts,
                 "--out", str(tmp_path / "bad")]) == 1
    assert "encoder-only" in capsys.readouterr().err
    assert main(["to-flax", str(tmp_path / "enc.pt"), "--model", opts, "--part", "encoder",
                 "--out", str(tmp_path / "enc")]) == 0
    assert main(["to-torch", str(tmp_path / "enc"), "--out", str(tmp_path / "enc2.pt")]) == 0
    back = load_state_dict(tmp_path / "enc2.pt")
    assert list(back) == list(encoder)
    for k in encoder:
        np.testing.assert_array_equal(back[k], encoder[k])


def test_presets_subprocess():
    result = subprocess.run([sys.executable, "-m", "glide_jax.convert", "presets"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == list(PRESETS)


def test_unknown_preset(tmp_path):
    with pytest.raises(SystemExit, match="unknown preset"):
        main(["to-flax", str(tmp_path / "x.pt"), "--model", "nope", "--out", str(tmp_path / "o")])
