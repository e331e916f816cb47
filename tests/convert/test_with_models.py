"""Conversion against the models' own parameter trees (glide_jax.models.abstract_params)."""
import collections

import jax
import numpy as np
import pytest

from glide_jax.convert import (ConversionError, convert, flax_to_torch, glide_to_piti_decoder,
                               torch_to_flax)
from glide_jax.models import PRESETS, abstract_params
from tests.convert.helpers import LAYOUT_PRESETS, fake_state_dict, layout_index, layout_shapes
from tests.fixture_utils import fixture_json, fixture_state_dict

TINY = ["glide_text2im_tiny", "glide_superres_tiny", "glide_inpaint_tiny", "piti_mask_tiny",
        "piti_superres_tiny"]


def tiny_options(name):
    options = dict(fixture_json(name)["options"])
    if "mode" not in options:  # GLIDE fixtures use a stub tokenizer with 500 tokens
        options["n_vocab"] = 500
    return options


def _shape_tree(tree):
    return jax.tree_util.tree_map(lambda x: tuple(x.shape), tree)


@pytest.mark.parametrize("name", sorted(LAYOUT_PRESETS))
def test_presets_match_official_layouts(name):
    options = PRESETS[LAYOUT_PRESETS[name]]
    shapes = layout_shapes(name)
    params = torch_to_flax(fake_state_dict(shapes), options)
    expected = convert.expected_shapes(options)  # abstract_params(options), flattened
    assert {p: v.shape for p, v in convert.flatten(params).items()} == expected
    assert convert.num_params(expected) == layout_index()[name]["num_params"]
    assert list(convert.torch_layout(expected).items()) == list(shapes.items())


@pytest.mark.parametrize("name", TINY)
def test_tiny_fixture_round_trip(name):
    options = tiny_options(name)
    state = fixture_state_dict(name)
    params = torch_to_flax(state, options)
    assert _shape_tree(params) == _shape_tree(abstract_params(options))
    back = flax_to_torch(params, options)
    assert list(back) == list(state)
    for k, v in state.items():
        np.testing.assert_array_equal(back[k], v)


def test_piti_parts():
    options = tiny_options("piti_mask_tiny")
    state = fixture_state_dict("piti_mask_tiny")
    encoder_only = collections.OrderedDict(
        (k[len("encoder."):], v) for k, v in state.items() if k.startswith("encoder."))
    with pytest.raises(ConversionError, match="encoder-only .*part='encoder'"):
        torch_to_flax(encoder_only, options)
    encoder = torch_to_flax(encoder_only, options, part="encoder")
    full = torch_to_flax(state, options)
    assert set(encoder) == set(full["encoder"])
    np.testing.assert_array_equal(encoder["cnn"]["conv1"]["kernel"],
                                  full["encoder"]["cnn"]["conv1"]["kernel"])
    back = flax_to_torch(encoder, options, part="encoder")
    assert list(back) == list(encoder_only)  # stage-1 checkpoints keep the same order
    decoder_only = {k[len("decoder."):]: v for k, v in state.items() if k.startswith("decoder.")}
    decoder = torch_to_flax(decoder_only, options, part="decoder")
    assert set(decoder) == set(full["decoder"])
    with pytest.raises(ConversionError, match="part='full'"):
        torch_to_flax(state, options, part="encoder")
    with pytest.raises(ValueError, match="only for PITI"):
        torch_to_flax(state, tiny_options("glide_text2im_tiny"), part="encoder")


def test_mismatched_checkpoint_is_one_clear_error():
    state = dict(fixture_state_dict("glide_text2im_tiny"))
    state["out.2.weight"] = state["out.2.weight"][:3]
    del state["final_ln.bias"]
    state["unknown.weight"] = np.zeros(2, np.float32)
    with pytest.raises(ConversionError) as e:
        torch_to_flax(state, tiny_options("glide_text2im_tiny"))
    assert e.value.missing == ["final_ln.bias"] and e.value.unexpected == ["unknown.weight"]
    assert e.value.misshaped == [("out.2.weight", (3, 32, 3, 3), (6, 32, 3, 3))]


def test_glide_base_into_piti_decoder():
    options = PRESETS["piti-base-mask"]
    state = fake_state_dict(layout_shapes("glide_base"))
    decoder, report = glide_to_piti_decoder(state, options)
    assert (len(report.loaded), len(report.dropped)) == (586, 197)
    assert _shape_tree(decoder) == _shape_tree(abstract_params(options)["decoder"])
    with pytest.raises(ConversionError, match="glide-decoder"):
        torch_to_flax(state, options)
