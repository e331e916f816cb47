"""The demo's spatial path (option encoder_spatial): off leaves the official network, on starts as
it (zero-initialised projections) and then carries the condition's layout into the UNet."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from glide_jax import convert
from glide_jax.models import PRESETS, abstract_params, create_model, example_inputs, init_params
from glide_jax.models.options import validate_options
from glide_jax.train import state as state_lib

OPTS = dict(image_size=16, num_channels=32, num_res_blocks=1, channel_mult="1,2",
            num_head_channels=16, attention_resolutions="8", dropout=0.0, family="piti",
            mode="coco", super_res=0, xf_width=512, encoder_width=32, encoder_layers=1,
            encoder_heads=2)


def _random_head(params):
    """A fresh UNet outputs zeros (zero-initialised out conv); give it a random head."""
    out = params["decoder"]["out_2"]
    out["kernel"] = 0.1 * jax.random.normal(jax.random.key(5), out["kernel"].shape)
    return params


def _inputs():
    inputs = example_inputs(OPTS, batch_size=2)
    inputs["x_t"] = jax.random.normal(jax.random.key(2), inputs["x_t"].shape)
    inputs["ref"] = jax.random.uniform(jax.random.key(1), inputs["ref"].shape, minval=-1.0)
    return inputs


def test_off_adds_no_params_and_on_adds_one_projection_per_level():
    off = traverse_util.flatten_dict(abstract_params(OPTS))
    on = traverse_util.flatten_dict(abstract_params(dict(OPTS, encoder_spatial=True)))
    extra = {k: v.shape for k, v in on.items() if k not in off}
    # level 0 (16x16, 32 ch) at the input conv, level 1 (8x8) at the downsample's output (32 ch)
    assert extra == {("decoder", "spatial_proj_0", "kernel"): (32, 32),
                     ("decoder", "spatial_proj_0", "bias"): (32,),
                     ("decoder", "spatial_proj_1", "kernel"): (32, 32),
                     ("decoder", "spatial_proj_1", "bias"): (32,)}
    assert set(off) <= set(on)


def test_starts_as_the_official_network_then_follows_the_layout():
    spatial = dict(OPTS, encoder_spatial=True)
    params = _random_head(init_params(spatial, jax.random.key(0)))
    official = {"encoder": params["encoder"],
                "decoder": {k: v for k, v in params["decoder"].items()
                            if not k.startswith("spatial_proj")}}
    inputs = _inputs()
    a = jax.jit(create_model(spatial).apply)({"params": params}, **inputs)
    b = jax.jit(create_model(OPTS).apply)({"params": official}, **inputs)
    assert float(jnp.abs(a).max()) > 0
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # With a non-zero projection, changing one corner of the condition changes the output most
    # near that corner: the path is spatial.
    params["decoder"]["spatial_proj_0"]["kernel"] = 0.5 * jax.random.normal(
        jax.random.key(3), params["decoder"]["spatial_proj_0"]["kernel"].shape)
    apply = jax.jit(create_model(spatial).apply)
    ref2 = inputs["ref"].at[:, :64, :64].set(-inputs["ref"][:, :64, :64])
    d = np.abs(np.asarray(apply({"params": params}, **dict(inputs, ref=ref2)))
               - np.asarray(apply({"params": params}, **inputs)))[..., :3].mean((0, 3))
    assert d[:4, :4].mean() > 3 * d[8:, 8:].mean()


def test_gradients_reach_every_projection_and_stage1_trains_them():
    spatial = dict(OPTS, encoder_spatial=True)
    params = _random_head(init_params(spatial, jax.random.key(0)))
    model, inputs = create_model(spatial), _inputs()
    grads = jax.jit(jax.grad(lambda p: jnp.sum(model.apply({"params": p}, **inputs) ** 2)))(
        params)
    for name in ("spatial_proj_0", "spatial_proj_1"):
        assert float(jnp.abs(grads["decoder"][name]["kernel"]).max()) > 0
    labels = traverse_util.flatten_dict(state_lib.param_labels(params, "encoder"))
    trained = {k for k, v in labels.items() if v == "train"}
    assert {k for k in trained if k[0] == "decoder"} == {
        ("decoder", f"spatial_proj_{i}", n) for i in (0, 1) for n in ("kernel", "bias")}
    assert all(labels[k] == "train" for k in labels if k[0] == "encoder")


def test_refused_where_it_has_no_meaning():
    with pytest.raises(ValueError, match="'encoder_spatial'"):
        validate_options(dict(PRESETS["glide-base"], encoder_spatial=True))
    with pytest.raises(ValueError, match="'encoder_spatial'"):
        validate_options(dict(PRESETS["piti-base-mask"], encoder_spatial=1))
    params = init_params(dict(OPTS, encoder_spatial=True), jax.random.key(0))
    with pytest.raises(convert.ConversionError, match="encoder_spatial.*no counterpart"):
        convert.flax_to_torch(params, dict(OPTS, encoder_spatial=True))
