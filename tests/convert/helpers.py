"""Shared helpers for the conversion tests: layouts and fake (zero-copy) state dicts."""
import json

import numpy as np

from tests.fixture_utils import FIXTURES

LAYOUTS = FIXTURES / "layouts"
# layout JSON -> preset of glide_jax.models.options.PRESETS
LAYOUT_PRESETS = {
    "glide_base": "glide-base",
    "glide_upsample": "glide-upsample",
    "glide_base_inpaint": "glide-base-inpaint",
    "glide_upsample_inpaint": "glide-upsample-inpaint",
    "piti_base_coco": "piti-base-mask",
    "piti_base_coco-edge": "piti-base-sketch",
    "piti_base_depth-normal": "piti-base-depth",
    "piti_upsample_coco": "piti-upsample-mask",
}


def layout(name: str) -> dict:
    return json.loads((LAYOUTS / f"{name}.json").read_text())


def layout_shapes(name: str) -> dict:
    """{torch key: shape} in the official registration order."""
    return {k: tuple(v["shape"]) for k, v in layout(name)["keys"].items()}


def layout_index() -> dict:
    return json.loads((LAYOUTS / "index.json").read_text())["layouts"]


def fake_state_dict(torch_shapes: dict) -> dict:
    """Zero-copy arrays of the right shapes: full-size layouts without allocating gigabytes."""
    return {k: np.broadcast_to(np.float32(0), s) for k, s in torch_shapes.items()}
