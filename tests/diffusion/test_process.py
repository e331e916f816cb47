"""The process math against the official float64 truth (fixtures), jit use and loss gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glide_jax.diffusion import create_gaussian_diffusion
from tests.fixture_utils import fixture_arrays, nchw_to_nhwc, rel_err

FIXTURES = {
    # PITI's GaussianDiffusion, full 1000 steps, RESCALED_MSE, rescale_timesteps.
    "diffusion_math_squaredcos_cap_v2_full": dict(
        steps=1000, learn_sigma=True, noise_schedule="squaredcos_cap_v2", rescale_timesteps=True,
        rescale_learned_sigmas=True),
    # GLIDE's, respaced to 100 steps (always learned range + eps, no rescaling).
    "diffusion_glide_math_squaredcos_cap_v2_100": dict(
        steps=1000, learn_sigma=True, noise_schedule="squaredcos_cap_v2",
        timestep_respacing="100"),
}
INPUTS = ("x_start", "noise", "t", "model_output", "step_noise", "cond_grad",
          "model_timesteps_seen", "cond_fn_timesteps_seen")
LOOSE = {"loss": 1e-4, "vb": 1e-4}


def _f32_nhwc(a):
    return jnp.asarray(nchw_to_nhwc(a), jnp.float32)


def compute_all(process, ref) -> dict:
    """Every fixture quantity from our process, under jit with t traced."""
    x_start, noise = _f32_nhwc(ref["x_start"]), _f32_nhwc(ref["noise"])
    out, step_noise = _f32_nhwc(ref["model_output"]), _f32_nhwc(ref["step_noise"])
    x_t_truth, grad = _f32_nhwc(ref["q_sample"]), _f32_nhwc(ref["cond_grad"])
    cond_fn = lambda x, t_model: grad  # noqa: E731

    @jax.jit
    def run(t):
        res = {"q_sample": process.q_sample(x_start, t, noise)}
        res["q_mean"], res["q_var"], res["q_logvar"] = process.q_mean_variance(x_start, t)
        (res["q_post_mean"], res["q_post_var"],
         res["q_post_logvar"]) = process.q_posterior_mean_variance(x_start, x_t_truth, t)
        for clip in (0, 1):
            pmv = process.p_mean_variance(out, x_t_truth, t, clip_denoised=bool(clip))
            for k, v in pmv.items():
                res[f"p_{k}_clip{clip}"] = v
        s = process.p_sample(out, x_t_truth, t, step_noise)
        res["p_sample"], res["p_sample_pred_xstart"] = s["sample"], s["pred_xstart"]
        res["p_sample_cond_fn"] = process.p_sample(out, x_t_truth, t, step_noise,
                                                   cond_fn=cond_fn)["sample"]
        for eta in (0.0, 0.5):
            res[f"ddim_sample_eta{eta}"] = process.ddim_sample(out, x_t_truth, t, eta,
                                                               step_noise)["sample"]
        res["ddim_sample_cond_fn_eta0.0"] = process.ddim_sample(
            out, x_t_truth, t, 0.0, step_noise, cond_fn=cond_fn)["sample"]
        res["ddim_reverse_sample"] = process.ddim_reverse_sample(out, x_t_truth, t)["sample"]
        res.update(process.training_losses(out, x_start, t, noise))
        return res

    return run(jnp.asarray(ref["t"], jnp.int32))


def fixture_errors(name) -> dict:
    """{array name: relative L2 error vs the float64 truth} for one fixture."""
    ref = fixture_arrays(name)
    ours = compute_all(create_gaussian_diffusion(**FIXTURES[name]), ref)
    errors = {}
    for key, truth in ref.items():
        if key in INPUTS or key.endswith("_f32"):
            continue
        truth = nchw_to_nhwc(truth) if truth.ndim == 4 else truth
        errors[key] = rel_err(ours[key], truth)
    return errors


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_arrays_match_float64_truth(name):
    errors = fixture_errors(name)
    expected = {k for k in fixture_arrays(name) if k not in INPUTS and not k.endswith("_f32")}
    assert set(errors) == expected
    bad = {k: e for k, e in errors.items() if not e <= LOOSE.get(k, 1e-5)}
    assert not bad, f"{name}: {bad}"


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_model_timesteps_match_what_the_official_model_saw(name):
    ref = fixture_arrays(name)
    process = create_gaussian_diffusion(**FIXTURES[name])
    seen = np.asarray(process.model_timesteps(jnp.asarray(ref["t"])))
    assert seen.dtype == np.float32
    np.testing.assert_array_equal(seen, ref["model_timesteps_seen"].astype(np.float32))
    np.testing.assert_array_equal(seen, ref["cond_fn_timesteps_seen"].astype(np.float32))


def test_cond_fn_receives_model_timesteps():
    process = create_gaussian_diffusion(learn_sigma=True, timestep_respacing="ddim25",
                                        rescale_timesteps=True)
    seen = []

    def cond_fn(x, t_model):
        seen.append(np.asarray(t_model))
        return jnp.zeros_like(x)

    x = jnp.zeros((2, 2, 2, 3))
    out = jnp.zeros((2, 2, 2, 6))
    process.p_sample(out, x, jnp.array([3, 24]), x, cond_fn=cond_fn)
    np.testing.assert_array_equal(seen[0], [120.0, 960.0])


def _loss_grads(process, term):
    ref = fixture_arrays("diffusion_math_squaredcos_cap_v2_full")
    x_start, noise = _f32_nhwc(ref["x_start"]), _f32_nhwc(ref["noise"])
    t = jnp.asarray(ref["t"], jnp.int32)
    fn = lambda out: jnp.sum(process.training_losses(out, x_start, t, noise)[term])  # noqa
    return jax.jit(jax.grad(fn))(_f32_nhwc(ref["model_output"]))


def test_vb_gradient_reaches_only_variance_and_mse_only_eps():
    process = create_gaussian_diffusion(learn_sigma=True, noise_schedule="squaredcos_cap_v2",
                                        rescale_learned_sigmas=True)
    g_vb, g_mse = _loss_grads(process, "vb"), _loss_grads(process, "mse")
    assert np.all(np.asarray(g_vb[..., :3]) == 0) and np.any(np.asarray(g_vb[..., 3:]) != 0)
    assert np.all(np.asarray(g_mse[..., 3:]) == 0) and np.any(np.asarray(g_mse[..., :3]) != 0)
    g_loss = _loss_grads(process, "loss")
    np.testing.assert_allclose(g_loss, g_vb + g_mse, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kwargs", [
    dict(learn_sigma=False), dict(learn_sigma=False, sigma_small=True),
    dict(learn_sigma=True, predict_xstart=True), dict(learn_sigma=True, use_kl=True),
])
def test_other_variants_run_and_are_finite(kwargs):
    process = create_gaussian_diffusion(timestep_respacing="10", **kwargs)
    key = jax.random.PRNGKey(0)
    x0 = jnp.clip(jax.random.normal(key, (2, 4, 4, 3)), -1, 1)
    channels = 6 if kwargs["learn_sigma"] else 3
    out = 0.5 * jax.random.normal(key, (2, 4, 4, channels))
    t = jnp.array([0, 9])
    pmv, losses = jax.jit(lambda o, x, t: (process.p_mean_variance(o, x, t),
                                           process.training_losses(o, x, t, x)))(out, x0, t)
    for v in list(pmv.values()) + list(losses.values()):
        assert np.isfinite(np.asarray(v)).all()
    if not kwargs["learn_sigma"]:
        np.testing.assert_array_equal(losses["loss"], losses["mse"])
        with pytest.raises(ValueError, match=r"model_output must be \(2, 4, 4, 3\)"):
            process.p_mean_variance(jnp.zeros((2, 4, 4, 6)), x0, t)


@pytest.mark.parametrize("learn_sigma", [True, False])
@pytest.mark.parametrize("predict_xstart", [True, False])
def test_xstart_from_output_recovers_x0_from_the_exact_prediction(learn_sigma, predict_xstart):
    # Whatever the parametrisation, the exact target (the noise, or x_0 itself) gives back x_0,
    # unclipped; the variance channels are ignored.
    process = create_gaussian_diffusion(timestep_respacing="10", learn_sigma=learn_sigma,
                                        predict_xstart=predict_xstart)
    x0 = 3.0 * jax.random.normal(jax.random.PRNGKey(1), (2, 4, 4, 3))
    noise = jax.random.normal(jax.random.PRNGKey(2), x0.shape)
    t = jnp.array([3, 9])
    x_t = process.q_sample(x0, t, noise)
    target = x0 if predict_xstart else noise
    out = jnp.concatenate([target, 5.0 * noise], -1) if learn_sigma else target
    got = process.predict_xstart_from_output(out, x_t, t)
    np.testing.assert_allclose(got, x0, rtol=1e-4, atol=1e-4)
    assert float(jnp.abs(got).max()) > 1.0   # not clipped


def test_final_step_is_the_clipped_x0_prediction():
    # At respaced index 0 the posterior coefficients are exactly (1, 0) in float32.
    process = create_gaussian_diffusion(learn_sigma=True, noise_schedule="squaredcos_cap_v2",
                                        timestep_respacing="27")
    x = 3.0 * jax.random.normal(jax.random.PRNGKey(1), (2, 4, 4, 3))
    out = jax.random.normal(jax.random.PRNGKey(2), (2, 4, 4, 6))
    step = process.p_sample(out, x, jnp.zeros((2,), jnp.int32), x)
    np.testing.assert_array_equal(step["sample"], step["pred_xstart"])
    assert float(jnp.abs(step["sample"]).max()) <= 1.0


def test_ddim_without_noise_needs_eta_zero():
    process = create_gaussian_diffusion(learn_sigma=True, timestep_respacing="10")
    x = jnp.zeros((1, 2, 2, 3))
    with pytest.raises(ValueError, match="needs noise"):
        process.ddim_sample(jnp.zeros((1, 2, 2, 6)), x, jnp.array([3]), eta=0.5)
