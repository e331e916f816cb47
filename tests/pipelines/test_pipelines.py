"""Pipelines end to end on tiny random models, and parity with PITI's guided model function."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glide_jax.convert import torch_to_flax
from glide_jax.pipelines import PITIPipeline
from glide_jax.pipelines.tiny import tiny_glide_pipeline, tiny_piti_pipeline
from tests.fixture_utils import (fixture_arrays, fixture_json, fixture_state_dict, nchw_to_nhwc,
                                 rel_err)

FAST = dict(steps="2", upsample_steps="2")


@pytest.fixture(scope="module")
def piti(data_dir):
    pipe = tiny_piti_pipeline("mask")
    files = sorted((data_dir / "piti_samples" / "test_imgs_mask").glob("*.png"))[:3]
    return pipe, pipe.read_conditions([str(f) for f in files])


def test_guided_model_output_matches_official_fixture():
    """The first denoising step's guided model output of converted official tiny weights."""
    meta, arrays = fixture_json("piti_mask_tiny"), fixture_arrays("piti_mask_tiny")
    options = dict(meta["options"], family="piti")
    params = torch_to_flax(fixture_state_dict("piti_mask_tiny"), options)
    pipe = PITIPipeline((params, options))
    ref = nchw_to_nhwc(arrays["ref"])
    x_t, t = nchw_to_nhwc(arrays["x_t"]), arrays["timesteps"]
    model_fn = pipe.guided_model_fn(pipe.base_variables, jnp.asarray(ref), meta["guidance_scale"])
    out = np.asarray(jax.jit(model_fn)(jnp.asarray(x_t), jnp.asarray(t)))
    n = x_t.shape[0]
    assert rel_err(out, nchw_to_nhwc(arrays["guided_f64"])[:n]) < 1e-5


def test_piti_end_to_end_from_real_masks(piti):
    pipe, ref = piti
    out = pipe(ref, seed=0, **FAST)
    assert out.images.shape == (3, 64, 64, 3) and out.images.dtype == np.uint8
    assert out.base_samples.shape == (3, 16, 16, 3)
    assert out.samples.min() >= -1 and out.samples.max() <= 1
    assert out.images.std() > 0
    # Same seed, same ids -> same images, whatever the batch they are sampled in.
    again = pipe(ref[1:], seed=0, sample_ids=[1, 2], upsample=False, **FAST)
    np.testing.assert_array_equal(again.base_samples, out.base_samples[1:])
    other = pipe(ref[1:], seed=1, sample_ids=[1, 2], upsample=False, **FAST)
    assert not np.array_equal(other.base_samples, out.base_samples[1:])
    assert pipe.timings.compiles == 2 and pipe.timings.runs == 4  # compiled once per shape


def test_guidance_scale_one_is_the_conditional_model(piti):
    pipe, ref = piti
    ref = jnp.asarray(ref[:1])
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 16, 16, 3))
    t = jnp.array([500.0])

    @jax.jit
    def outputs(params, ref, x, t):
        return (pipe.base_model.apply(params, x, t, ref=ref),
                pipe.guided_model_fn(params, ref, 1.0)(x, t),
                # the two-pass guided path, forced at scale 1 (normalisation blend 0)
                pipe.guided_model_fn(params, ref, 1.0, normalize=0.0)(x, t),
                pipe.guided_model_fn(params, ref, 3.0)(x, t))

    direct, conditional, forced, guided = outputs(pipe.base_variables, ref, x, t)
    np.testing.assert_allclose(conditional, direct, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(forced, direct, atol=1e-4, rtol=1e-4)
    assert np.abs(np.asarray(guided[..., :3]) - np.asarray(direct[..., :3])).max() > 1e-3


def test_piti_sketches_from_files(data_dir):
    pipe = tiny_piti_pipeline("sketch", upsample=False)
    files = sorted((data_dir / "piti_samples" / "test_imgs_sketch").glob("*.png"))[:2]
    out = pipe([str(f) for f in files], steps="2", sampler="ddim")
    assert out.images.shape == (2, 16, 16, 3)
    with pytest.raises(ValueError, match="must have 1 channels, got 3"):
        pipe(np.zeros((1, 256, 256, 3), np.float32))


def test_glide_text_and_inpainting():
    pipe = tiny_glide_pipeline(upsample=False)
    out = pipe(["a red cube", "a corgi"], steps="2")
    assert out.images.shape == (2, 16, 16, 3)
    inpaint = tiny_glide_pipeline(inpaint=True, upsample=False)
    image = np.linspace(-0.9, 0.9, 16 * 16 * 3, dtype=np.float32).reshape(16, 16, 3)
    mask = np.zeros((16, 16), np.float32)
    mask[:8] = 1  # keep the top half
    out = inpaint(["a cat"], inpaint_image=image, inpaint_mask=mask, steps="2")
    # Ancestral sampling ends on the processed x0: the known pixels are the source's.
    np.testing.assert_allclose(out.base_samples[0, :8], image[:8], atol=1e-5)
    with pytest.raises(ValueError, match="need inpaint_image"):
        inpaint(["a cat"])
