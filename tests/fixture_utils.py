"""Helpers for the official-code fixtures in tests/data/fixtures (see its README.md)."""
import hashlib
import json
import zlib

import numpy as np

from tests.conftest import DATA_DIR

FIXTURES = DATA_DIR / "fixtures"
_EMBEDDING_SUFFIXES = ("token_embedding.weight", "positional_embedding", "padding_embedding",
                       "cls_token")


def fixture_json(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def fixture_arrays(name: str) -> dict:
    with np.load(FIXTURES / f"{name}.npz") as z:
        return {k: z[k] for k in z.files}


def recipe_tensor(seed: int, key: str, shape) -> np.ndarray:
    """One weight as the fixture recipe defines it: a pure function of (seed, key, shape)."""
    shape = tuple(shape)
    z = np.random.default_rng([seed, zlib.crc32(key.encode())]).standard_normal(shape)
    if key.endswith(_EMBEDDING_SUFFIXES):
        value = 0.5 * z
    elif len(shape) == 1 and key.endswith("weight"):
        value = 1.0 + 0.1 * z
    elif len(shape) == 1:
        value = 0.1 * z
    else:
        value = z / np.sqrt(np.prod(shape[1:]))
    return value.astype(np.float32)


def fixture_state_dict(name: str) -> dict:
    """The fixture's full official state dict (PyTorch key order), rebuilt from the recipe.

    Each tensor is checked against the sha256 recorded by the fixture, so a wrong rebuild fails
    loudly instead of producing a misleading parity error.
    """
    weights = fixture_json(name)["weights"]
    state = {}
    for key, shape in weights["keys"].items():
        value = recipe_tensor(weights["seed"], key, shape)
        digest = hashlib.sha256(value.astype("<f4").tobytes()).hexdigest()[:16]
        expected = weights["sha256_16_of_float32_le_bytes"][key]
        if digest != expected:
            raise AssertionError(f"fixture {name}: rebuilt {key} has sha {digest}, expected {expected}")
        state[key] = value
    return state


def rel_err(ours, truth) -> float:
    """Relative L2 error ||ours - truth|| / ||truth||, computed in float64."""
    ours = np.asarray(ours, np.float64)
    truth = np.asarray(truth, np.float64)
    if ours.shape != truth.shape:
        raise AssertionError(f"shape {ours.shape} != {truth.shape}")
    return float(np.linalg.norm(ours - truth) / np.linalg.norm(truth))


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.transpose(x, (0, 2, 3, 1))
