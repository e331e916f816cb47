"""Every configuration of the generator's grid (tools/make_reference.py, tests/data/reference):
the official constructor's layout and parameter count, torch -> flax -> torch bit-exact, and the
model output and encoder outputs within 1e-5 of the official code's float64 truth."""
import collections

import jax
import numpy as np
import pytest

from glide_jax.convert import convert, flax_to_torch, torch_to_flax
from glide_jax.models import create_model
from tests.fixture_utils import nchw_to_nhwc
from tests.reference_utils import (config_inputs, config_state_dict, reference_array,
                                   reference_json, rel_err)

TOL = 1e-5
RECORDS = {f"{r['family']}/{r['name']}": r for r in reference_json("models")["configs"]}


def _jax_inputs(record, inputs):
    out = dict(x_t=nchw_to_nhwc(inputs["x_t"]), timesteps=inputs["timesteps"])
    for key in ("low_res", "inpaint_image", "inpaint_mask", "ref"):
        if key in inputs:
            out[key] = nchw_to_nhwc(inputs[key])
    if record["family"] == "glide":
        out.update(tokens=inputs["tokens"].astype(np.int32), mask=inputs["mask"])
    return out


def _check(key, errors):
    print(key, {k: f"{v:.2e}" for k, v in errors.items()})
    bad = {k: v for k, v in errors.items() if not v < TOL}
    assert not bad, f"relative error vs the float64 truth >= {TOL}: {bad}"


def _option_values(record) -> set:
    values = {(record["family"], k, str(v)) for k, v in record["official_options"].items()}
    if "low_res" in record["extra"]:
        ratio = record["official_options"]["image_size"] / record["extra"]["low_res"]
        values.add((record["family"], "integer_ratio", str(ratio == int(ratio))))
    return values


def _covering_subset(records) -> set:
    """A few configurations that together take every option value of the grid (greedy set
    cover, smaller models first on ties): the part CI runs; the rest is `-m slow`."""
    values = {k: _option_values(r) for k, r in records.items()}
    chosen, covered = set(), set()
    while covered != set().union(*values.values()):
        best = max(sorted(set(values) - chosen),
                   key=lambda k: (len(values[k] - covered), -records[k]["num_params"]))
        chosen.add(best)
        covered |= values[best]
    return chosen


CI_SUBSET = _covering_subset(RECORDS)


@pytest.mark.parametrize("key", [k if k in CI_SUBSET else pytest.param(k, marks=pytest.mark.slow)
                                 for k in sorted(RECORDS)])
def test_reference_configuration(key):
    record = RECORDS[key]
    options = record["options"]
    # Layout: the parameter tree maps one-to-one onto the official state dict, in its order.
    shapes = convert.expected_shapes(options)
    assert list(convert.torch_layout(shapes).items()) == \
        [(k, tuple(s)) for k, s in record["layout"]]
    assert convert.num_params(shapes) == record["num_params"]
    # torch -> flax -> torch, bit for bit and in registration order.
    state = config_state_dict(record)
    params = torch_to_flax(state, options)
    back = flax_to_torch(params, options)
    assert list(back) == list(state)
    for k, v in state.items():
        np.testing.assert_array_equal(back[k], v, err_msg=k)
    # Outputs against the float64 truth.
    inputs = _jax_inputs(record, config_inputs(record))
    model = create_model(options)
    variables = {"params": params}
    truth = lambda name: reference_array("models", f"{key}/{name}")  # noqa: E731
    errors = {}
    with jax.default_matmul_precision("highest"):
        out = model.apply(variables, **inputs)
        errors["out"] = rel_err(out, nchw_to_nhwc(truth("out")))
        if record["family"] == "glide":
            xf_proj, xf_out = model.apply(variables, inputs["tokens"], inputs["mask"],
                                          method="get_text_emb")
            errors["text_xf_proj"] = rel_err(xf_proj, truth("text_xf_proj"))
            errors["text_xf_out"] = rel_err(xf_out, truth("text_xf_out").transpose(0, 2, 1))
        else:
            xf_proj, xf_out = model.apply(variables, inputs["ref"], method="encode")
            errors["xf_proj"] = rel_err(xf_proj, truth("xf_proj"))
            positions = record["xf_out_positions"]
            errors["xf_out_positions"] = rel_err(np.asarray(xf_out)[:, positions],
                                                 truth("xf_out_positions").transpose(0, 2, 1))
    _check(key, errors)


def test_grid_covers_the_option_space():
    """The grid spans every option that changes structure or arithmetic (issue 12's list)."""
    seen = collections.defaultdict(set)
    for record in RECORDS.values():
        for family, k, v in _option_values(record):
            seen[(family, k)].add(v)
    for family in ("glide", "piti"):
        for key in ("resblock_updown", "use_scale_shift_norm", "super_res"):
            assert len(seen[(family, key)]) >= 2, (family, key)
        assert "-1" in seen[(family, "num_head_channels")]
        assert len(seen[(family, "num_heads_upsample")]) >= 2
        assert len(seen[(family, "attention_resolutions")]) >= 2
        assert len(seen[(family, "channel_mult")]) >= 2
        assert seen[(family, "integer_ratio")] == {"True", "False"}
    for key in ("xf_width", "xf_layers", "xf_heads", "xf_padding", "xf_final_ln", "inpaint"):
        assert len(seen[("glide", key)]) >= 2, key
    assert seen[("piti", "mode")] == {"coco", "ade20k", "coco-edge", "flickr-edge",
                                      "depth-normal"}
    assert len(seen[("piti", "xf_heads")]) >= 3 and len(seen[("piti", "learn_sigma")]) == 2
