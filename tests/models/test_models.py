"""Model-level behaviour: presets and parameter counts, init, dropout, bf16, remat, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glide_jax.models import (PRESETS, abstract_params, count_params, create_model,
                              example_inputs, init_params, validate_options)
from glide_jax.models.options import resolve_options, tiny_options
from tests.fixture_utils import rel_err

# Official totals (tests/data/fixtures/layouts/index.json; piti-upsample-sketch counted from the official SuperResText2ImModel).
OFFICIAL_COUNTS = {
    "glide-base": (385_030_726, 783), "glide-upsample": (398_361_286, 797),
    "glide-base-inpaint": (385_037_638, 783), "glide-upsample-inpaint": (398_368_198, 797),
    "piti-base-mask": (338_015_302, 708), "piti-base-sketch": (338_012_166, 708),
    "piti-base-depth": (338_020_006, 708), "piti-upsample-mask": (351_345_862, 722),
    "piti-upsample-sketch": (351_342_726, 722),
}
# The project's toy widths at 8x8, with dropout on (some tests check it acts).
TINY = dict(tiny_options("glide-base"), image_size=8, channel_mult="1", attention_resolutions="8",
            text_ctx=8, n_vocab=50, dropout=0.5)


@pytest.mark.parametrize("preset", sorted(OFFICIAL_COUNTS))
def test_full_size_parameter_count(preset):
    params = abstract_params(PRESETS[preset])
    assert (count_params(params), len(jax.tree_util.tree_leaves(params))) == \
        OFFICIAL_COUNTS[preset]
    assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(params))


def test_parameter_paths_mirror_state_dict():
    params = abstract_params(PRESETS["piti-base-mask"])
    assert params["decoder"]["input_blocks_5"]["layers_1"]["qkv"]["kernel"].shape == (384, 1152)
    assert params["decoder"]["middle_block"]["layers_0"]["in_layers_2"]["kernel"].shape == \
        (3, 3, 768, 768)
    assert params["decoder"]["transformer_proj"]["kernel"].shape == (512, 768)
    assert params["encoder"]["cnn"]["conv1"]["kernel"].shape == (7, 7, 3, 32)
    assert params["encoder"]["cls_token"].shape == (1, 1, 512)
    assert params["encoder"]["positional_embedding"].shape == (1, 257, 512)
    glide = abstract_params(PRESETS["glide-upsample"])
    assert glide["transformer"]["resblocks_3"]["attn"]["c_qkv"]["kernel"].shape == (512, 1536)
    assert glide["output_blocks_11"]["layers_1"]["in_layers_0"]["scale"].shape == (384,)
    assert glide["token_embedding"]["embedding"].shape == (50257, 512)
    assert glide["positional_embedding"].shape == (128, 512)


def _randomized(params, seed=0):
    """Break the zero-inits so outputs depend on every layer."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree_util.tree_unflatten(
        tree, [x + 0.05 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def _jitted(model):
    return jax.jit(model.apply, static_argnames=("train",))


def _tiny(**overrides):
    options = dict(TINY, **overrides)
    inputs = example_inputs(options, batch_size=2)
    rng = np.random.default_rng(0)
    inputs["x_t"] = jnp.asarray(rng.standard_normal(inputs["x_t"].shape), jnp.float32)
    inputs["timesteps"] = jnp.array([999.0, 10.0])
    inputs["tokens"] = jnp.asarray(rng.integers(0, 50, inputs["tokens"].shape), jnp.int32)
    inputs["mask"] = jnp.array([[True] * 5 + [False] * 3, [False] * 8])
    return options, create_model(options), inputs


@pytest.fixture(scope="module")
def tiny_params():
    options, _, _ = _tiny()
    return _randomized(init_params(options, jax.random.key(0)))


def test_fresh_model_outputs_zero_and_shapes():
    options, model, inputs = _tiny()
    variables = jax.jit(model.init)(jax.random.key(1), **inputs)
    out = _jitted(model)(variables, **inputs)
    assert out.shape == (2, 8, 8, 6) and out.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(out), 0.0)  # zero-initialised heads and branches
    assert 0.005 < float(jnp.std(variables["params"]["positional_embedding"])) < 0.02


def test_dropout_only_in_training(tiny_params):
    options, model, inputs = _tiny()
    v = {"params": tiny_params}
    apply = _jitted(model)
    eval_a = apply(v, **inputs)
    eval_b = apply(v, **inputs, train=False, rngs={"dropout": jax.random.key(3)})
    np.testing.assert_array_equal(np.asarray(eval_a), np.asarray(eval_b))
    train_a = apply(v, **inputs, train=True, rngs={"dropout": jax.random.key(3)})
    train_b = apply(v, **inputs, train=True, rngs={"dropout": jax.random.key(4)})
    assert not np.allclose(np.asarray(train_a), np.asarray(eval_a))
    assert not np.allclose(np.asarray(train_a), np.asarray(train_b))


def test_bfloat16_compute_close_to_float32(tiny_params):
    _, model32, inputs = _tiny()
    _, model16, _ = _tiny(dtype="bfloat16")
    v = {"params": tiny_params}
    out32 = np.asarray(_jitted(model32)(v, **inputs))
    out16 = _jitted(model16)(v, **inputs)
    assert out16.dtype == jnp.float32
    err = rel_err(out16, out32)
    assert err < 3e-2, err


def test_remat_same_output_and_gradient(tiny_params):
    _, plain, inputs = _tiny()
    _, remat, _ = _tiny(use_checkpoint=True)

    def loss(model, params):
        out = model.apply({"params": params}, **inputs, train=True,
                          rngs={"dropout": jax.random.key(5)})
        return jnp.sum(out * jnp.cos(out)), out

    (l1, o1), g1 = jax.jit(jax.value_and_grad(lambda p: loss(plain, p), has_aux=True))(
        tiny_params)
    (l2, o2), g2 = jax.jit(jax.value_and_grad(lambda p: loss(remat, p), has_aux=True))(
        tiny_params)
    np.testing.assert_allclose(np.asarray(o2), np.asarray(o1), rtol=1e-5, atol=1e-5)
    flat1 = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(g1)])
    flat2 = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(g2)])
    assert np.linalg.norm(flat2 - flat1) <= 1e-5 * np.linalg.norm(flat1)


@pytest.mark.parametrize("inpaint,super_res,channels", [(True, False, 7), (True, True, 10),
                                                        (False, True, 6)])
def test_variants_input_channels(inpaint, super_res, channels):
    options = dict(TINY, inpaint=inpaint, super_res=super_res)
    params = abstract_params(options)
    assert params["input_blocks_0"]["layers_0"]["kernel"].shape == (3, 3, channels, 32)


def test_glide_requires_tokens():
    options, model, inputs = _tiny()
    inputs.pop("tokens")
    with pytest.raises(ValueError, match="tokens"):
        model.init(jax.random.key(0), **inputs)


@pytest.mark.parametrize("mode,channels", [("coco", 3), ("coco-edge", 1), ("depth-normal", 6)])
def test_piti_condition_errors(mode, channels):
    options = dict(PRESETS["piti-base-mask"], mode=mode)
    model = create_model(options)
    inputs = example_inputs(options)
    assert inputs["ref"].shape == (1, 256, 256, channels)
    with pytest.raises(ValueError, match="256x256, got 128x128"):
        model.init(jax.random.key(0), **dict(inputs, ref=jnp.ones((1, 128, 128, channels))))
    wrong = jnp.ones((1, 256, 256, channels + 1))
    with pytest.raises(ValueError, match=f"{mode!r} must have {channels} channels, got "
                                         f"{channels + 1}"):
        model.init(jax.random.key(0), **dict(inputs, ref=wrong))
    with pytest.raises(ValueError, match="ref"):
        model.init(jax.random.key(0), **dict(inputs, ref=None))


@pytest.mark.parametrize("bad,match", [
    (dict(foo=1), "unknown option"), (dict(dtype="float16"), "'dtype'"),
    (dict(channel_mult="1,2,3"), "'channel_mult'"), (dict(family="x"), "'family'"),
    (dict(num_res_blocks=0), "'num_res_blocks'"), (dict(inpaint=1), "'inpaint'"),
])
def test_validate_options_names_the_key(bad, match):
    with pytest.raises(ValueError, match=match):
        validate_options(dict(PRESETS["glide-base"], **bad))


def test_validate_piti_options():
    with pytest.raises(ValueError, match="'mode'"):
        validate_options(dict(PRESETS["piti-base-mask"], mode="depth"))
    with pytest.raises(ValueError, match="'xf_width'"):
        validate_options(dict(PRESETS["piti-base-mask"], xf_width=256))
    assert resolve_options({"mode": "coco"})["family"] == "piti"
    assert resolve_options({})["family"] == "glide"


def test_presets_match_official_defaults():
    base, up = PRESETS["glide-base"], PRESETS["glide-upsample"]
    assert (base["image_size"], base["num_res_blocks"], base["noise_schedule"]) == \
        (64, 3, "squaredcos_cap_v2")
    assert (up["image_size"], up["num_res_blocks"], up["noise_schedule"], up["super_res"]) == \
        (256, 2, "linear", True)
    piti_up = PRESETS["piti-upsample-mask"]
    assert (piti_up["super_res"], piti_up["rescale_timesteps"], piti_up["learn_sigma"]) == \
        (64, True, True)
    for options in PRESETS.values():
        validate_options(options)


def test_piti_encoder_follows_the_official_derivation():
    """Width xf_width, heads xf_heads, 8 layers whatever xf_layers says (PITI Text2ImModel)."""
    for preset in ("piti-base-mask", "piti-upsample-sketch"):
        enc = create_model(PRESETS[preset]).encoder
        assert (enc.width, enc.layers, enc.heads) == (512, 8, 8)
    enc = create_model(dict(PRESETS["piti-base-mask"], xf_heads=4, xf_layers=3)).encoder
    assert (enc.width, enc.layers, enc.heads) == (512, 8, 4)
    with pytest.raises(ValueError, match="'xf_width'.*transformer_proj"):
        validate_options(dict(PRESETS["piti-base-mask"], xf_width=256))
    with pytest.raises(ValueError, match="'xf_heads'"):
        validate_options(dict(PRESETS["piti-base-mask"], xf_heads=6))


def test_small_piti_encoder_builds_and_runs():
    opts = dict(TINY, family="piti", mode="coco", super_res=0, xf_width=512, encoder_width=64,
                encoder_layers=2,
                encoder_heads=4, dropout=0.0)
    params = abstract_params(opts)
    enc = params["encoder"]
    assert [enc["cnn"][f"conv{i}"]["kernel"].shape[-1] for i in range(1, 7)] == \
        [4, 8, 16, 32, 64, 64]
    assert enc["cls_token"].shape == (1, 1, 64)
    assert enc["positional_embedding"].shape == (1, 257, 64)
    assert enc["final_ln"]["scale"].shape == (64,)
    assert sorted(k for k in enc["transformer"]) == ["resblocks_0", "resblocks_1"]
    assert enc["transformer"]["resblocks_0"]["attn"]["c_qkv"]["kernel"].shape == (64, 192)
    dec = params["decoder"]
    assert dec["transformer_proj"]["kernel"].shape == (64, 128)
    assert dec["input_blocks_1"]["layers_1"]["encoder_kv"]["kernel"].shape[0] == 64
    model = create_model(opts)
    real = init_params(opts, jax.random.key(0))
    inputs = example_inputs(opts, batch_size=2)
    inputs["ref"] = jax.random.uniform(jax.random.key(1), inputs["ref"].shape, minval=-1.0)
    out = model.apply({"params": real}, **inputs)
    assert out.shape == (2, 8, 8, 6) and bool(jnp.all(jnp.isfinite(out)))
    xf_proj, xf_out = model.apply({"params": real}, inputs["ref"], method=model.encode)
    assert xf_proj.shape == (2, 64) and xf_out.shape == (2, 256, 64)


@pytest.mark.parametrize("bad,match", [
    (dict(encoder_width=72), "'encoder_width'"), (dict(encoder_width=0), "'encoder_width'"),
    (dict(encoder_width=64, encoder_heads=3), "'encoder_heads'"),
    (dict(encoder_layers=0), "'encoder_layers'"), (dict(encoder_layers=2.0), "'encoder_layers'"),
])
def test_validate_piti_encoder_options(bad, match):
    with pytest.raises(ValueError, match=match):
        validate_options(dict(PRESETS["piti-base-mask"], **bad))
    with pytest.raises(ValueError, match="'encoder_width'"):
        validate_options(dict(PRESETS["glide-base"], encoder_width=64))


@pytest.mark.parametrize("family,bad,option", [
    # The official GLIDE constructor builds a text-free UNet for xf_width=0; glide_jax does not.
    ("glide", dict(xf_width=0), "'xf_width'"),
    # PITI builds with another xf_width but its forward fails (512-channel CNN, Linear(512, ..)).
    ("piti", dict(xf_width=256), "'xf_width'"),
    ("piti", dict(mode=""), "'mode'"), ("piti", dict(mode="depth"), "'mode'"),
    ("piti", dict(xf_heads=3), "'xf_heads'"),
    ("glide", dict(xf_heads=3), "'xf_heads'"),
    ("glide", dict(num_channels=48), "'num_channels'"),
    ("glide", dict(num_head_channels=-1, num_heads=5), "'num_heads'"),
    ("glide", dict(num_head_channels=-1, num_heads=2, num_heads_upsample=5),
     "'num_heads_upsample'"),
    ("glide", dict(num_head_channels=40), "'num_head_channels'"),
    ("glide", dict(image_size=48, channel_mult=""), "'channel_mult'"),
    ("glide", dict(channel_mult="1,2,2"), "'channel_mult'"),
])
def test_unsupported_official_options_fail_naming_the_option(family, bad, option):
    base = PRESETS["glide-base"] if family == "glide" else PRESETS["piti-base-mask"]
    with pytest.raises(ValueError, match=option):
        create_model(dict(base, **bad))
