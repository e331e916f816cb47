"""Training grids: the ancestral and DDIM grid samplers on the tiny GLIDE model."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glide_jax import models
from glide_jax.train import config_lib
from glide_jax.images import MIN_TILE, to_uint8
from glide_jax.train.visualize import grid_image, make_sample_fn, write_grid
from tests.train.conftest import tiny_config


def _model_and_batch():
    options = config_lib.model_options(tiny_config())
    params = models.init_params(options, jax.random.PRNGKey(0))
    r, ctx = options["image_size"], options["text_ctx"]
    batch = {"image": jnp.zeros((2, r, r, 3)), "tokens": jnp.zeros((2, ctx), jnp.int32),
             "mask": jnp.ones((2, ctx), bool)}
    return models.create_model(options), options, params, batch


def test_ddim_grid_is_deterministic_and_ancestral_is_not():
    model, options, params, batch = _model_and_batch()
    k1, k2 = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
    ddim = make_sample_fn(model, options, "4", 1.0, sampler="ddim")
    anc = make_sample_fn(model, options, "4", 1.0, sampler="ancestral")
    a, b = np.asarray(ddim(params, batch, k1)), np.asarray(ddim(params, batch, k1))
    assert a.shape == (2,) + batch["image"].shape[1:] and np.all(np.abs(a) <= 1.0)
    np.testing.assert_array_equal(a, b)
    # Same start noise (same key), different chains: DDIM (eta 0) adds no noise on the way.
    assert not np.allclose(a, np.asarray(anc(params, batch, k1)))
    assert not np.allclose(np.asarray(anc(params, batch, k1)), np.asarray(anc(params, batch, k2)))
    grid = grid_image({"image": np.asarray(batch["image"])}, a)
    assert grid.dtype == np.uint8 and grid.ndim == 3


def test_unknown_grid_sampler_is_rejected():
    model, options, _, _ = _model_and_batch()
    with pytest.raises(ValueError, match="plms"):
        make_sample_fn(model, options, "4", 1.0, sampler="plms")


def test_small_grid_tiles_are_enlarged_exactly(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    batch = {"image": rng.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)}
    samples = rng.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    path = write_grid(str(tmp_path), "g", batch, samples)
    png = np.asarray(Image.open(path))
    scale = MIN_TILE // 16
    small = np.asarray(png[::scale, ::scale])
    # rows: blank condition | sample | truth; 2-pixel padding, enlarged with the tiles.
    assert png.shape == (scale * (2 * 18 + 2), scale * (3 * 18 + 2), 3)
    np.testing.assert_array_equal(small[2:18, 20:36], to_uint8(samples[0]))
    np.testing.assert_array_equal(small[2:18, 38:54], to_uint8(batch["image"][0]))
    np.testing.assert_array_equal(small[20:36, 20:36], to_uint8(samples[1]))
    np.testing.assert_array_equal(png, np.repeat(np.repeat(small, scale, 0), scale, 1))


def test_grid_condition_column_is_the_nearest_resized_condition():
    """A 256x256 condition (non-constant) lands in the first column resized to the tile size."""
    rng = np.random.default_rng(1)
    ref = rng.uniform(-1, 1, (1, 256, 256, 3)).astype(np.float32)
    samples = rng.uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    grid = grid_image({"image": samples, "ref_ori": ref}, samples)
    scale = MIN_TILE // 16
    tile = grid[::scale, ::scale][2:18, 2:18]
    np.testing.assert_array_equal(tile, to_uint8(ref[0, ::16, ::16]))
