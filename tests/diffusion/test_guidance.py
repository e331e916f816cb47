"""Guidance wrappers, hooks and the two-stage hand-off."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glide_jax.diffusion import (classifier_free_guidance, conditional_model, gradient_cond_fn,
                                 inpaint_denoised_fn, normalized_guidance, quantize_low_res)

B, SHAPE = 2, (2, 4, 4, 3)
KEY = jax.random.PRNGKey(0)


def fake_apply(x, t, *, ref, low_res=None, train=False):
    """A conditioned fake network: [B,H,W,6] depending on x, t and the condition `ref`."""
    assert train is False
    w = jnp.linspace(-1, 1, 18).reshape(3, 6)
    out = jnp.tanh(x @ w + ref[:, None, None, :] + (t / 1000.0)[:, None, None, None])
    return out if low_res is None else out + low_res.mean()


REF = jax.random.normal(KEY, (B, 6))
COND, UNCOND = {"ref": REF, "low_res": None, "train": False}, {"ref": jnp.ones_like(REF),
                                                               "low_res": None, "train": False}
X = jax.random.normal(jax.random.PRNGKey(1), SHAPE)
T = jnp.array([999.0, 10.0])


def test_scale_one_equals_the_conditional_model():
    guided = classifier_free_guidance(fake_apply, COND, UNCOND, 1.0)(X, T)
    np.testing.assert_allclose(guided, conditional_model(fake_apply, COND)(X, T), rtol=1e-6,
                               atol=1e-7)


def test_guided_eps_and_conditional_variance():
    scale = 3.0
    guided = jax.jit(lambda x, t, s: classifier_free_guidance(fake_apply, COND, UNCOND, s)(
        x, t))(X, T, scale)
    cond, uncond = fake_apply(X, T, ref=REF), fake_apply(X, T, ref=jnp.ones_like(REF))
    np.testing.assert_allclose(guided[..., :3], uncond[..., :3] + scale * (cond[..., :3]
                                                                           - uncond[..., :3]),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(guided[..., 3:], cond[..., 3:], rtol=1e-5, atol=1e-6)


def test_one_batched_network_call():
    calls = []

    def counting_apply(x, t, **kwargs):
        calls.append(x.shape[0])
        return fake_apply(x, t, **kwargs)

    classifier_free_guidance(counting_apply, COND, UNCOND, 2.0)(X, T)
    assert calls == [2 * B]


def test_mismatched_conditioning_raises():
    with pytest.raises(ValueError, match="same keys"):
        classifier_free_guidance(fake_apply, {"ref": REF}, {"ref": REF, "low_res": REF}, 2.0)
    with pytest.raises(ValueError, match="'train': non-array values must be equal"):
        classifier_free_guidance(fake_apply, {"train": False}, {"train": True}, 2.0)


def test_normalized_guidance_matches_conditional_statistics():
    guided = jax.random.normal(jax.random.PRNGKey(2), SHAPE) * 3 + 1
    cond = jax.random.normal(jax.random.PRNGKey(3), SHAPE)
    full = normalized_guidance(guided, cond, 1.0)
    np.testing.assert_allclose(full.mean(axis=(1, 2, 3)), cond.mean(axis=(1, 2, 3)), atol=1e-5)
    np.testing.assert_allclose(full.std(axis=(1, 2, 3)), cond.std(axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(normalized_guidance(guided, cond, 0.0), guided, rtol=1e-6)
    wrapped = classifier_free_guidance(fake_apply, COND, UNCOND, 3.0, normalize=1.0)(X, T)
    cond_eps = fake_apply(X, T, ref=REF)[..., :3]
    np.testing.assert_allclose(wrapped[..., :3].std(axis=(1, 2, 3)),
                               cond_eps.std(axis=(1, 2, 3)), rtol=1e-5)


def test_inpaint_denoised_fn():
    image, x0 = jnp.full(SHAPE, 0.5), jnp.full(SHAPE, -0.25)
    mask = jnp.zeros(SHAPE[:3] + (1,)).at[:, 0].set(1.0)
    out = inpaint_denoised_fn(image, mask)(x0)
    np.testing.assert_array_equal(out[:, 0], 0.5)
    np.testing.assert_array_equal(out[:, 1:], -0.25)


def test_gradient_cond_fn():
    target = jnp.full(SHAPE, 0.3)
    cond_fn = gradient_cond_fn(lambda x, t: -0.5 * jnp.sum((x - target) ** 2, axis=(1, 2, 3)),
                               scale=2.0)
    np.testing.assert_allclose(cond_fn(X, T), 2.0 * (target - X), rtol=1e-6)


def test_quantize_low_res_round_and_truncate():
    x = jnp.array([-1.5, -1.0, 0.0, 0.5, 1.0, 2.0]).reshape(1, 1, 6, 1)
    levels_round = np.asarray((quantize_low_res(x, "round") + 1) * 127.5).round().ravel()
    levels_trunc = np.asarray((quantize_low_res(x, "truncate") + 1) * 127.5).round().ravel()
    # 127.5 rounds half to even (128); truncation drops it to 127; 0.5 -> 191.25.
    np.testing.assert_array_equal(levels_round, [0, 0, 128, 191, 255, 255])
    np.testing.assert_array_equal(levels_trunc, [0, 0, 127, 191, 255, 255])
    with pytest.raises(ValueError, match="'round' \\(GLIDE\\) or 'truncate' \\(PITI\\)"):
        quantize_low_res(x, "floor")
