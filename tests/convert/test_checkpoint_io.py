"""load_state_dict / save_state_dict: formats, dtypes, and refusal of bad or unsafe files."""
import collections
import os
import pickle
import zipfile

import numpy as np
import pytest

from glide_jax.convert import (CheckpointError, UnsafeCheckpointError, load_state_dict,
                               save_state_dict)
from tests.fixture_utils import FIXTURES, fixture_state_dict

try:
    import torch
except ImportError:  # the [torch] extra is optional; tests that need it are skipped without it
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs the [torch] extra")
BACKENDS = [pytest.param("torch", marks=needs_torch), "builtin"]


@pytest.fixture(scope="module")
def tiny_state():
    return fixture_state_dict("glide_text2im_tiny")


def _torch_save(state, path, legacy=False):
    torch.save(collections.OrderedDict((k, torch.from_numpy(v)) for k, v in state.items()),
               path, _use_new_zipfile_serialization=not legacy)


def _assert_same(loaded, state):
    assert list(loaded) == list(state)
    for k in state:
        assert loaded[k].dtype == np.float32
        np.testing.assert_array_equal(loaded[k], state[k])


def test_safetensors_fixture(tiny_state):
    _assert_same(load_state_dict(FIXTURES / "glide_text2im_tiny.safetensors"),
                 {k: tiny_state[k] for k in sorted(tiny_state)})


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_pt_round_trip_bit_exact(tmp_path, tiny_state, backend, legacy):
    path = tmp_path / "tiny.pt"
    _torch_save(tiny_state, path, legacy)
    _assert_same(load_state_dict(path, backend=backend), tiny_state)


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_half_precision_and_views_upcast(tmp_path, backend, legacy):
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 7
    state = {"half": base.half(), "bf16": base.bfloat16(), "f64": base.double(),
             "transposed": base.t(), "row": base[1], "param": torch.nn.Parameter(base.clone())}
    path = tmp_path / "mixed.pt"
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    loaded = load_state_dict(path, backend=backend)
    assert list(loaded) == list(state)
    for k, v in state.items():
        assert loaded[k].dtype == np.float32, k
        np.testing.assert_array_equal(loaded[k], v.detach().float().numpy(), err_msg=k)


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
def test_wrapped_state_dicts(tmp_path, backend):
    w = torch.ones(2, 3)
    torch.save({"state_dict": {"a.weight": w}, "step": 7, "lr": [1e-4]}, tmp_path / "w.pt")
    torch.save({"module.a.weight": w}, tmp_path / "ddp.pt")
    for name in ("w.pt", "ddp.pt"):
        loaded = load_state_dict(tmp_path / name, backend=backend)
        assert list(loaded) == ["a.weight"] and loaded["a.weight"].shape == (2, 3)
    torch.save({"step": 7}, tmp_path / "nothing.pt")
    with pytest.raises(CheckpointError, match="not a state dict of tensors"):
        load_state_dict(tmp_path / "nothing.pt", backend=backend)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file") as e:
        load_state_dict(tmp_path / "absent.pt")
    assert "absent.pt" in str(e.value)


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_truncated_pt(tmp_path, tiny_state, backend, legacy):
    path = tmp_path / "cut.pt"
    _torch_save(tiny_state, path, legacy)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated|corrupt") as e:
        load_state_dict(path, backend=backend)
    assert "cut.pt" in str(e.value)


def test_truncated_safetensors(tmp_path):
    data = (FIXTURES / "glide_text2im_tiny.safetensors").read_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        load_state_dict(path)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n" + bytes(64), b"just some text\n", b""],
                         ids=["png", "text", "empty"])
def test_not_a_checkpoint(tmp_path, backend, content):
    path = tmp_path / "image.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a PyTorch") as e:
        load_state_dict(path, backend=backend)
    assert "image.pt" in str(e.value)


class _Payload:
    """Unpickling this would create `marker` through os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious_files(tmp_path, marker):
    payload = pickle.dumps({"a.weight": _Payload(marker)}, protocol=2)
    raw = tmp_path / "raw.pt"
    raw.write_bytes(payload)
    zipped = tmp_path / "zipped.pt"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/version", "3\n")
        zf.writestr("archive/byteorder", "little")
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
                       + pickle.dumps(1001, protocol=2)
                       + pickle.dumps({"little_endian": True}, protocol=2) + payload)
    return [raw, zipped, legacy]


@pytest.mark.parametrize("backend", BACKENDS)
def test_malicious_pickle_is_refused_and_does_not_run(tmp_path, backend):
    marker = tmp_path / "payload_ran"
    # sanity: the payload really would run under plain pickle
    pickle.loads(pickle.dumps(_Payload(tmp_path / "control")))
    assert (tmp_path / "control").exists()
    for path in _malicious_files(tmp_path, marker):
        with pytest.raises(UnsafeCheckpointError, match="refused") as e:
            load_state_dict(path, backend=backend)
        assert path.name in str(e.value)
        assert not marker.exists(), f"{path.name}: the payload ran"


@needs_torch
def test_save_state_dict(tmp_path, tiny_state):
    save_state_dict(tmp_path / "t.safetensors", tiny_state)
    _assert_same(load_state_dict(tmp_path / "t.safetensors"),
                 {k: tiny_state[k] for k in sorted(tiny_state)})
    save_state_dict(tmp_path / "t.pt", tiny_state)
    _assert_same(load_state_dict(tmp_path / "t.pt", backend="builtin"), tiny_state)
    assert list(torch.load(tmp_path / "t.pt", weights_only=True)) == list(tiny_state)


@needs_torch
def test_without_torch(tmp_path, tiny_state, monkeypatch):
    from glide_jax.convert import checkpoint_io
    _torch_save(tiny_state, tmp_path / "t.pt")
    monkeypatch.setattr(checkpoint_io, "_torch_available", lambda: False)
    _assert_same(load_state_dict(tmp_path / "t.pt"), tiny_state)  # auto -> builtin reader
    with pytest.raises(CheckpointError, match=r"glide_jax\[torch\].*safetensors"):
        save_state_dict(tmp_path / "out.pt", tiny_state)
