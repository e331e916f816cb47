"""Parity with the official PyTorch code on the tiny fixtures (tests/data/fixtures).

Every output is compared with the float64 truth `<out>_f64` by relative L2 error; the official
float32 run itself gets 2e-7..2.5e-6, the bar here is 1e-5.
"""
import jax
import numpy as np
import pytest

from glide_jax.convert import torch_to_flax
from glide_jax.models import create_model
from glide_jax.model_fns import piti_model_fn
from tests.fixture_utils import (fixture_arrays, fixture_json, fixture_state_dict, nchw_to_nhwc,
                                 rel_err)

TOL = 1e-5
GLIDE = ("glide_text2im_tiny", "glide_superres_tiny", "glide_inpaint_tiny")
PITI = ("piti_mask_tiny", "piti_superres_tiny")
_CACHE = {}


def _setup(name):
    if name not in _CACHE:
        meta, arrays = fixture_json(name), fixture_arrays(name)
        options = dict(meta["options"])
        if meta["family"] == "glide":
            options["n_vocab"] = meta["n_vocab"]
        params = torch_to_flax(fixture_state_dict(name), options)
        inputs = dict(x_t=nchw_to_nhwc(arrays["x_t"]), timesteps=arrays["timesteps"])
        for key in ("low_res", "inpaint_image", "inpaint_mask", "ref"):
            if key in arrays:
                inputs[key] = nchw_to_nhwc(arrays[key])
        if meta["family"] == "glide":
            inputs.update(tokens=arrays["tokens"].astype(np.int32), mask=arrays["mask"])
        _CACHE[name] = (meta, arrays, create_model(options), {"params": params}, inputs)
    return _CACHE[name]


def _check(name, output, ours, truth):
    err = rel_err(ours, truth)
    print(f"{name} {output}: rel L2 err vs f64 = {err:.3e}")
    assert err < TOL, f"{name} {output}: relative error {err:.3e} >= {TOL}"


@pytest.mark.parametrize("name", GLIDE + PITI)
def test_out(name):
    meta, arrays, model, variables, inputs = _setup(name)
    with jax.default_matmul_precision("highest"):
        out = model.apply(variables, **inputs)
    assert out.dtype == np.float32
    _check(name, "out", out, nchw_to_nhwc(arrays["out_f64"]))


@pytest.mark.parametrize("name", GLIDE)
def test_text_encoder(name):
    meta, arrays, model, variables, inputs = _setup(name)
    with jax.default_matmul_precision("highest"):
        xf_proj, xf_out = model.apply(variables, inputs["tokens"], inputs["mask"],
                                      method="get_text_emb")
    _check(name, "text_xf_proj", xf_proj, arrays["text_xf_proj_f64"])
    _check(name, "text_xf_out", xf_out, arrays["text_xf_out_f64"].transpose(0, 2, 1))


@pytest.mark.parametrize("name", PITI)
def test_task_encoder(name):
    meta, arrays, model, variables, inputs = _setup(name)
    with jax.default_matmul_precision("highest"):
        xf_proj, xf_out = model.apply(variables, inputs["ref"], method="encode")
    assert xf_proj.shape == (2, 512) and xf_out.shape == (2, 256, 512)
    _check(name, "xf_proj", xf_proj, arrays["xf_proj_f64"])
    if "xf_out_f64" in arrays:
        _check(name, "xf_out", xf_out, arrays["xf_out_f64"].transpose(0, 2, 1))


def test_piti_guided():
    """PITI's classifier-free guided model function (glide_jax.model_fns, what the pipelines and
    training grids sample with) against the official glide_util.sample's model_fn: the fixture's
    rows 0:N hold the guided eps with the conditional variance channels."""
    meta, arrays, model, variables, inputs = _setup("piti_mask_tiny")
    model_fn = piti_model_fn(model, variables, inputs["ref"], meta["guidance_scale"])
    with jax.default_matmul_precision("highest"):
        guided = np.asarray(model_fn(inputs["x_t"], inputs["timesteps"]))
    n = inputs["x_t"].shape[0]
    _check("piti_mask_tiny", "guided", guided, nchw_to_nhwc(arrays["guided_f64"])[:n])
