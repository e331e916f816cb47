"""Helpers for the option-space references in tests/data/reference (made by
tools/make_reference.py from the official code; see tests/data/reference/README.md)."""
import functools
import gzip
import hashlib
import json
import zlib

import numpy as np

from tests.conftest import DATA_DIR
from tests.fixture_utils import recipe_tensor

REFERENCE = DATA_DIR / "reference"


@functools.lru_cache(maxsize=None)
def reference_json(name: str) -> dict:
    with gzip.open(REFERENCE / f"{name}.json.gz", "rt") as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def _npz(name: str):
    return np.load(REFERENCE / f"{name}.npz")


def reference_array(name: str, key: str) -> np.ndarray:
    return _npz(name)[key]


def sha16(array) -> str:
    arr = np.ascontiguousarray(array)
    arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    return hashlib.sha256(arr.tobytes()).hexdigest()[:16]


def recipe_input(seed: int, key: str, shape, kind: str) -> np.ndarray:
    """The generator's input recipe (tools/ref_common.py), float32."""
    rng = np.random.default_rng([seed, zlib.crc32(("input:" + key).encode())])
    if kind == "normal":
        return rng.standard_normal(shape).astype(np.float32)
    if kind == "uniform":
        return rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    if kind == "binary":
        return (rng.random(shape) < 0.5).astype(np.float32)
    raise ValueError(f"unknown input recipe {kind!r}")


def config_inputs(record: dict, npz: str = "models") -> dict:
    """The inputs of one model configuration (NCHW as recorded), checked by their sha16."""
    out = {}
    for key, info in record["inputs"].items():
        if key == "timesteps":
            value = np.asarray(record["timesteps"], np.float32)
        elif info["recipe"] == "stored":
            value = reference_array(npz, f"{record['family']}/{record['name']}/input/{key}")
        else:
            value = recipe_input(record["seed"], info["recipe_key"], tuple(info["shape"]),
                                 info["recipe"])
        if sha16(value) != info["sha16"]:
            raise AssertionError(f"{record['name']}: rebuilt input {key} differs from the "
                                 "generator's (numpy's random streams changed?)")
        out[key] = value
    return out


def config_state_dict(record: dict) -> dict:
    """The official state dict of a configuration, rebuilt from the weight recipe."""
    return {key: recipe_tensor(record["seed"], key, shape) for key, shape in record["layout"]}


def rel_err(ours, truth) -> float:
    """Relative L2 error; for an all-zero truth, the absolute L2 norm of `ours`."""
    ours, truth = np.asarray(ours, np.float64), np.asarray(truth, np.float64)
    if ours.shape != truth.shape:
        raise AssertionError(f"shape {ours.shape} != {truth.shape}")
    norm = np.linalg.norm(truth)
    diff = np.linalg.norm(ours - truth)
    return float(diff / norm) if norm > 0 else float(diff)
