"""Beta schedules, derived tables and respacing against the official float64 values."""
import numpy as np
import pytest

from glide_jax.diffusion import (create_gaussian_diffusion, get_named_beta_schedule,
                                 respace_betas, space_timesteps)
from tests.fixture_utils import fixture_arrays

SCHEDULES = ("linear", "squaredcos_cap_v2")


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedule_tables_match_official(schedule):
    ref = fixture_arrays("diffusion_schedules")
    np.testing.assert_array_equal(get_named_beta_schedule(schedule, 1000), ref[f"betas_{schedule}"])
    process = create_gaussian_diffusion(steps=1000, noise_schedule=schedule, learn_sigma=True)
    # Like the official SpacedDiffusion, even the unspaced process rebuilds its betas from
    # alphas_cumprod, which moves them by an ulp.
    np.testing.assert_allclose(process.betas, ref[f"betas_{schedule}"], rtol=1e-12, atol=0)
    for name in ("alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped"):
        ours, truth = getattr(process, name), ref[f"{name}_{schedule}"]
        np.testing.assert_allclose(ours, truth, rtol=1e-12, atol=0, err_msg=name)


def test_schedule_spot_values():
    cos = create_gaussian_diffusion(noise_schedule="squaredcos_cap_v2")
    np.testing.assert_allclose(cos.betas[0], 4.1284224822e-05, rtol=1e-9)
    assert cos.betas[999] == 0.999 and (cos.betas[:999] < 0.999).all()
    np.testing.assert_allclose(cos.alphas_cumprod[999], 2.428767e-09, rtol=1e-6)
    np.testing.assert_allclose(cos.posterior_variance[1], 2.178950e-05, rtol=1e-6)
    lin = create_gaussian_diffusion(noise_schedule="linear")
    np.testing.assert_allclose(lin.alphas_cumprod[999], 4.035830e-05, rtol=1e-6)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_respacing_100_matches_official(schedule):
    ref = fixture_arrays("diffusion_respacing")
    tag = f"{schedule}__100"
    steps = sorted(space_timesteps(1000, "100"))
    np.testing.assert_array_equal(steps, ref[f"space_timesteps__{tag}"])
    process = create_gaussian_diffusion(noise_schedule=schedule, timestep_respacing="100",
                                        learn_sigma=True)
    np.testing.assert_array_equal(process.timestep_map, ref[f"timestep_map__{tag}"])
    np.testing.assert_array_equal(process.betas, ref[f"betas__{tag}"])
    base = get_named_beta_schedule(schedule, 1000)
    np.testing.assert_allclose(process.alphas_cumprod,
                               np.cumprod(1 - base)[process.timestep_map], rtol=1e-10)


SPEC_VECTORS = {
    "fast27": [0, 22, 44, 66, 88, 111, 133, 155, 177, 199, 200, 222, 244, 266, 288, 311, 333, 355,
               377, 399, 400, 500, 599, 600, 799, 800, 997],
    "27": [0, 38, 77, 115, 154, 192, 231, 269, 307, 346, 384, 423, 461, 499, 538, 576, 615, 653,
           692, 730, 768, 807, 845, 884, 922, 961, 999],
    "ddim50": list(range(0, 1000, 20)),
    "ddim25": list(range(0, 1000, 40)),
    "10,10,10": [0, 37, 74, 111, 148, 185, 222, 259, 296, 333, 334, 371, 408, 445, 482, 518, 555,
                 592, 629, 666, 667, 704, 741, 778, 815, 851, 888, 925, 962, 999],
}


@pytest.mark.parametrize("spec", sorted(SPEC_VECTORS))
def test_space_timesteps_spec_vectors(spec):
    assert sorted(space_timesteps(1000, spec)) == SPEC_VECTORS[spec]


def test_space_timesteps_100_and_250():
    s100 = sorted(space_timesteps(1000, "100"))
    assert len(s100) == 100
    assert s100[:11] == [0, 10, 20, 30, 40, 50, 61, 71, 81, 91, 101]
    assert s100[-6:] == [949, 959, 969, 979, 989, 999]
    s250 = sorted(space_timesteps(1000, "250"))
    assert len(s250) == 250 and s250[:3] == [0, 4, 8] and s250[-2:] == [995, 999]
    assert sorted(space_timesteps(1000, [1000])) == list(range(1000))
    assert space_timesteps(1000, 100) == space_timesteps(1000, "100")


def test_model_timesteps_follow_the_map():
    p = create_gaussian_diffusion(timestep_respacing="fast27", learn_sigma=True)
    t = np.arange(27)
    np.testing.assert_array_equal(np.asarray(p.model_timesteps(t)), SPEC_VECTORS["fast27"])
    assert p.model_timesteps(t).dtype == np.float32
    scaled = create_gaussian_diffusion(steps=100, rescale_timesteps=True)
    np.testing.assert_array_equal(np.asarray(scaled.model_timesteps(np.array([0, 99]))),
                                  [0.0, 990.0])


@pytest.mark.parametrize("spec, match", [
    ("2000", "cannot divide section 0 of 1000 steps"),
    ("10,10,10,10,10,10,10,10,10,10,200", "cannot divide section"),
    ("ddim", "ddimN"),
    ("ddim7000", "no integer stride gives exactly 7000 steps"),
    ("ddim999", "no integer stride gives exactly 999 steps"),
    ("fast", "not 'ddimN', 'fast27' or a comma-separated list"),
    ("10,,10", "comma-separated"),
    ("0", "at least 1 step"),
    ("10,-3", "at least 1 step"),
])
def test_impossible_respacing_raises(spec, match):
    with pytest.raises(ValueError, match=match):
        space_timesteps(1000, spec)
    with pytest.raises(ValueError, match=match):
        create_gaussian_diffusion(timestep_respacing=spec)


def test_bad_schedule_and_kept_steps_raise():
    with pytest.raises(ValueError, match="unknown noise_schedule 'cosine'"):
        get_named_beta_schedule("cosine", 1000)
    with pytest.raises(ValueError, match="kept timesteps must lie in"):
        respace_betas(np.full(10, 0.1), {0, 10})
    with pytest.raises(ValueError, match="'fast27' needs a longer process"):
        space_timesteps(20, "fast27")
