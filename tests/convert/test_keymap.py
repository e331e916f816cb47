"""The torch key <-> Flax path tables, against every key of the full-size official layouts."""
import numpy as np
import pytest

from glide_jax.convert import keymap
from glide_jax.convert.convert import flax_layout, num_params, torch_layout
from tests.convert.helpers import LAYOUT_PRESETS, layout_index, layout_shapes
from tests.fixture_utils import fixture_json

ARCHITECTURE_EXAMPLES = [  # docs/architecture.md, "Parameter tree"
    ("input_blocks.5.1.qkv.weight", 3, "input_blocks_5/layers_1/qkv/kernel"),
    ("middle_block.0.in_layers.2.weight", 4, "middle_block/layers_0/in_layers_2/kernel"),
    ("output_blocks.3.2.out_layers.0.weight", 1, "output_blocks_3/layers_2/out_layers_0/scale"),
    ("time_embed.0.weight", 2, "time_embed_0/kernel"),
    ("out.2.weight", 4, "out_2/kernel"),
    ("transformer.resblocks.3.attn.c_qkv.weight", 2, "transformer/resblocks_3/attn/c_qkv/kernel"),
    ("token_embedding.weight", 2, "token_embedding/embedding"),
    ("positional_embedding", 2, "positional_embedding"),
    ("padding_embedding", 2, "padding_embedding"),
    ("final_ln.weight", 1, "final_ln/scale"),
    ("transformer.resblocks.0.ln_1.bias", 1, "transformer/resblocks_0/ln_1/bias"),
    ("encoder.cnn.conv1.weight", 4, "encoder/cnn/conv1/kernel"),
    ("encoder.cnn.norm1.weight", 1, "encoder/cnn/norm1/scale"),
    ("encoder.cls_token", 3, "encoder/cls_token"),
    ("encoder.positional_embedding", 3, "encoder/positional_embedding"),
    ("decoder.transformer_proj.weight", 2, "decoder/transformer_proj/kernel"),
    ("decoder.input_blocks.0.0.weight", 4, "decoder/input_blocks_0/layers_0/kernel"),
]


@pytest.mark.parametrize("key,ndim,path", ARCHITECTURE_EXAMPLES)
def test_documented_examples(key, ndim, path):
    assert keymap.torch_key_to_flax_path(key, ndim) == path
    flax_path, value = keymap.tensor_to_flax(key, np.zeros((2,) * ndim, np.float32))
    assert flax_path == path
    assert keymap.tensor_to_torch(flax_path, value)[0] == key


def test_tensor_layouts():
    conv = np.arange(2 * 3 * 5 * 7, dtype=np.float32).reshape(2, 3, 5, 7)  # [O, I, kh, kw]
    path, k = keymap.tensor_to_flax("out.2.weight", conv)
    assert k.shape == (5, 7, 3, 2) and k[4, 6, 2, 1] == conv[1, 2, 4, 6]
    conv1d = np.arange(6 * 4, dtype=np.float32).reshape(6, 4, 1)
    _, d = keymap.tensor_to_flax("input_blocks.5.1.qkv.weight", conv1d)
    assert d.shape == (4, 6) and d[3, 5] == conv1d[5, 3, 0]
    linear = np.arange(12, dtype=np.float32).reshape(4, 3)
    _, lin = keymap.tensor_to_flax("time_embed.0.weight", linear)
    np.testing.assert_array_equal(lin, linear.T)
    for key, value in [("out.2.weight", conv), ("input_blocks.5.1.qkv.weight", conv1d),
                       ("time_embed.0.weight", linear)]:
        p, f = keymap.tensor_to_flax(key, value)
        back_key, back = keymap.tensor_to_torch(p, f)
        assert back_key == key
        np.testing.assert_array_equal(back, value)


def test_unmappable_keys_are_refused():
    with pytest.raises(keymap.KeyMappingError, match="no rule"):
        keymap.torch_rule("input_blocks.5.1.qkv.weight", 2)  # a Linear where a Conv1d belongs
    with pytest.raises(keymap.KeyMappingError, match="not a known Sequential"):
        keymap.torch_key_to_flax_path("blocks.3.weight", 2)
    with pytest.raises(keymap.KeyMappingError, match="registration order"):
        keymap.torch_order_key("mystery.weight")


@pytest.mark.parametrize("name", sorted(LAYOUT_PRESETS))
def test_layout_round_trip_and_order(name):
    shapes = layout_shapes(name)
    flax_shapes = flax_layout(shapes)
    assert len(flax_shapes) == len(shapes)  # the map is injective
    back = torch_layout(flax_shapes)
    assert list(back) == list(shapes)  # same keys in the official registration order
    assert dict(back) == shapes
    info = layout_index()[name]
    assert len(shapes) == info["num_tensors"]
    assert num_params(flax_shapes) == info["num_params"]


@pytest.mark.parametrize("name", ["glide_text2im_tiny", "glide_superres_tiny",
                                  "glide_inpaint_tiny", "piti_mask_tiny", "piti_superres_tiny"])
def test_fixture_key_order(name):
    keys = list(fixture_json(name)["weights"]["keys"])
    assert sorted(keys, key=keymap.torch_order_key) == keys
