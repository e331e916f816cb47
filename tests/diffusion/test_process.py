"""The process math against the official float64 truth (fixtures), jit use and loss gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glide_jax.diffusion import create_gaussian_diffusion
from tests.diffusion.helpers import _f32_nhwc, compute_all
from tests.fixture_utils import fixture_arrays, nchw_to_nhwc

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




def fixture_row_errors(name) -> dict:
    """{(array name, row): (our relative L2 error vs the float64 truth, the official float32
    run's)} for one fixture, one batch row (one timestep) at a time."""
    ref = fixture_arrays(name)
    ours = compute_all(create_gaussian_diffusion(**FIXTURES[name]), ref)
    errors = {}
    for key, truth in ref.items():
        if key in INPUTS or key.endswith("_f32"):
            continue
        official = ref[key + "_f32"]
        if truth.ndim == 4:
            truth, official = nchw_to_nhwc(truth), nchw_to_nhwc(official)
        for row in range(truth.shape[0]):
            errors[key, row] = (row_rel_err(ours[key][row], truth[row]),
                                row_rel_err(official[row], truth[row]))
    return errors


def row_rel_err(ours, truth) -> float:
    norm = np.linalg.norm(np.asarray(truth, np.float64))
    diff = np.linalg.norm(np.asarray(ours, np.float64) - np.asarray(truth, np.float64))
    return float(diff / norm) if norm else float(diff)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_arrays_match_float64_truth_per_timestep(name):
    """Each row (one timestep) within 1e-5 of the float64 truth wherever the official float32
    code is; elsewhere within twice the official error."""
    errors = fixture_row_errors(name)
    expected = {k for k in fixture_arrays(name) if k not in INPUTS and not k.endswith("_f32")}
    assert {k for k, _ in errors} == expected
    bad = {k: e for k, e in errors.items() if not e[0] <= max(1e-5, 2 * e[1])}
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
