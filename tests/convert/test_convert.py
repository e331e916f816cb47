"""Strict torch <-> flax conversion: bit-exact round trips, official order, one clear error."""
import numpy as np
import pytest

from glide_jax.convert import ConversionError, convert
from tests.convert.helpers import fake_state_dict, layout_shapes
from tests.fixture_utils import fixture_json, fixture_state_dict

TINY = ["glide_text2im_tiny", "glide_superres_tiny", "glide_inpaint_tiny", "piti_mask_tiny",
        "piti_superres_tiny"]


def _fixture_shapes(name):
    keys = fixture_json(name)["weights"]["keys"]
    return convert.flax_layout({k: tuple(s) for k, s in keys.items()})


@pytest.mark.parametrize("name", TINY)
def test_tiny_round_trip_bit_exact_in_official_order(name):
    state = fixture_state_dict(name)
    shapes = _fixture_shapes(name)
    flat, missing = convert.convert_to_flax(state, shapes)
    assert not missing and set(flat) == set(shapes)
    assert all(v.dtype == np.float32 and v.shape == shapes[p] for p, v in flat.items())
    back = convert.convert_to_torch(flat, shapes)
    assert list(back) == list(fixture_json(name)["weights"]["keys"])  # registration order
    for k, v in state.items():
        np.testing.assert_array_equal(back[k], v)
        assert back[k].flags.c_contiguous


def test_nested_params_round_trip():
    state = fixture_state_dict("glide_text2im_tiny")
    shapes = _fixture_shapes("glide_text2im_tiny")
    params = convert.unflatten(convert.convert_to_flax(state, shapes)[0])
    assert params["input_blocks_1"]["layers_1"]["qkv"]["kernel"].shape == (32, 96)
    assert params["token_embedding"]["embedding"].shape == (500, 32)
    back = convert.convert_to_torch(convert.flatten({"params": params}), shapes)
    np.testing.assert_array_equal(back["input_blocks.1.1.qkv.weight"],
                                  state["input_blocks.1.1.qkv.weight"])


def test_one_error_lists_every_problem():
    state = dict(fixture_state_dict("glide_text2im_tiny"))
    shapes = _fixture_shapes("glide_text2im_tiny")
    del state["out.2.bias"]
    state["input_blocks.1.0.in_layers.2.weight"] = np.zeros((32, 32, 1, 1), np.float32)
    state["input_blocks.5.1.qkv.weight"] = np.zeros(3, np.float32)  # no such block
    state["extra"] = np.zeros(3, np.float32)
    with pytest.raises(ConversionError) as e:
        convert.convert_to_flax(state, shapes)
    err = e.value
    assert err.missing == ["out.2.bias"]
    assert err.unexpected == ["input_blocks.5.1.qkv.weight", "extra"]
    assert err.misshaped == [("input_blocks.1.0.in_layers.2.weight", (32, 32, 1, 1),
                              (32, 32, 3, 3))]
    msg = str(err)
    for piece in ("1 missing key(s): out.2.bias", "2 unexpected key(s)", "extra",
                  "input_blocks.1.0.in_layers.2.weight: got (32, 32, 1, 1), "
                  "expected (32, 32, 3, 3)"):
        assert piece in msg


def test_flax_side_errors():
    shapes = _fixture_shapes("glide_text2im_tiny")
    flat = {p: np.zeros(s, np.float32) for p, s in shapes.items()}
    flat.pop("out_2/bias")
    flat["time_embed_0/kernel"] = np.zeros((1, 1), np.float32)
    flat["bogus/kernel"] = np.zeros((1, 1), np.float32)
    with pytest.raises(ConversionError) as e:
        convert.convert_to_torch(flat, shapes)
    assert e.value.missing == ["out_2/bias"] and e.value.unexpected == ["bogus/kernel"]
    assert e.value.misshaped[0][0] == "time_embed_0/kernel"


def test_hints_name_the_checkpoint_kind():
    piti = {"family": "piti"}
    encoder_only = {"cnn.conv1.weight": 0, "cls_token": 0}
    assert "encoder-only" in convert._hint(encoder_only, piti, "full")
    assert "part='encoder'" in convert._hint(encoder_only, piti, "full")
    assert "glide-decoder" in convert._hint({"token_embedding.weight": 0}, piti, "full")
    assert "part='full'" in convert._hint({"encoder.cls_token": 0}, piti, "encoder")
    glide = {"family": "glide"}
    assert "PITI checkpoint" in convert._hint({"decoder.out.2.bias": 0}, glide, "full")


def _decoder_shapes(piti_layout):
    shapes = layout_shapes(piti_layout)
    return convert.flax_layout({k[len("decoder."):]: s for k, s in shapes.items()
                                if k.startswith("decoder.")})


@pytest.mark.parametrize("glide,piti,n_kept", [("glide_base", "piti_base_coco", 586),
                                               ("glide_upsample", "piti_upsample_coco", 600)])
def test_glide_into_piti_decoder_full_size(glide, piti, n_kept):
    state = fake_state_dict(layout_shapes(glide))
    params, report = convert.glide_to_decoder_shapes(state, _decoder_shapes(piti))
    assert len(report.loaded) == n_kept and len(report.dropped) == len(state) - n_kept
    assert len(convert.flatten(params)) == n_kept
    assert "transformer_proj.weight" in report.loaded
    assert {"positional_embedding", "padding_embedding", "token_embedding.weight",
            "final_ln.weight", "final_ln.bias", "transformer.resblocks.15.ln_2.bias"} <= set(
                report.dropped)
    assert not any(k.startswith("transformer.") for k in report.loaded)
    assert report.summary().startswith(f"{n_kept} tensors loaded")


def test_glide_base_drops_197_keys():
    state = layout_shapes("glide_base")
    assert len(state) == 783
    assert sum(convert.is_glide_text_key(k) for k in state) == 197


def test_glide_into_piti_decoder_errors():
    shapes = _decoder_shapes("piti_base_coco")
    state = dict(fake_state_dict(layout_shapes("glide_base")))
    del state["out.2.bias"]
    with pytest.raises(ConversionError, match="out.2.bias"):
        convert.glide_to_decoder_shapes(state, shapes)
    tiny = fixture_state_dict("glide_text2im_tiny")  # xf_width 32 cannot feed PITI's 512
    with pytest.raises(ConversionError, match="mis-shaped"):
        convert.glide_to_decoder_shapes(tiny, shapes)
    with pytest.raises(ConversionError, match="expected a GLIDE checkpoint"):
        convert.glide_to_decoder_shapes(fake_state_dict(layout_shapes("piti_base_coco")), shapes)
