"""The diffusion process over PITI's and GLIDE's whole option space (tests/data/reference, made by
tools/make_reference.py from the official code), compared per timestep row.

Each case has one batch row per timestep (0, 1, 2, 3, N/2, N-2, N-1 of its possibly respaced
process), so an error at small t cannot hide in an average over rows. Every row of every output
must be within 1e-5 (relative L2) of the official code's float64 truth wherever the official
float32 code itself is; where the official float32 code is further off (catastrophic cancellation
in its own formulas, e.g. the discretized likelihood at t=0 or a KL near 0), within twice its
error.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glide_jax.diffusion import create_gaussian_diffusion
from glide_jax.diffusion.process import (GaussianDiffusion, LossType, ModelMeanType,
                                         ModelVarType)
from glide_jax.diffusion.schedules import get_named_beta_schedule
from tests.diffusion.helpers import compute_all
from tests.fixture_utils import nchw_to_nhwc
from tests.reference_utils import reference_array, reference_json, rel_err

TOL = 1e-5
CASES = {f"{c['family']}/{c['name']}": c for c in reference_json("diffusion")["cases"]}


def our_process(case) -> GaussianDiffusion:
    kwargs = dict(case["constructor"])
    if case["family"] == "glide":
        # GLIDE's process: learned range, eps, integer model timesteps.
        return create_gaussian_diffusion(learn_sigma=True, **kwargs)
    if "model_var_type" in kwargs:
        return GaussianDiffusion(
            get_named_beta_schedule("squaredcos_cap_v2", 1000),
            ModelMeanType[kwargs["model_mean_type"]], ModelVarType[kwargs["model_var_type"]],
            LossType[kwargs["loss_type"]], rescale_timesteps=True)
    return create_gaussian_diffusion(**kwargs)


def _row_tolerance(official_err):
    return max(TOL, 2.0 * official_err)


@pytest.mark.parametrize("key", sorted(CASES))
def test_reference_case_per_timestep(key):
    case = CASES[key]
    process = our_process(case)
    assert process.num_timesteps == case["num_timesteps"]
    np.testing.assert_array_equal(process.timestep_map, case["timestep_map"])
    official = case["official_f32_row_rel_err_vs_f64"]
    arrays = {k: reference_array("diffusion", f"{key}/input/{k}")
              for k in ("x_start", "noise", "step_noise", "cond_grad", "model_output")}
    arrays["t"] = np.asarray(case["t"])
    arrays["q_sample"] = reference_array("diffusion", f"{key}/q_sample")
    ours = jax.device_get(compute_all(process, arrays))
    bad, strict_rows, worst = [], 0, 0.0
    for name, errs in official.items():
        truth = reference_array("diffusion", f"{key}/{name}")
        truth = nchw_to_nhwc(truth) if truth.ndim == 4 else truth
        for row, t in enumerate(case["t"]):
            err = rel_err(ours[name][row], truth[row])
            tol = _row_tolerance(errs[row])
            strict_rows += tol == TOL
            worst = max(worst, err if tol == TOL else 0.0)
            if not err <= tol:
                bad.append(f"{name}[t={t}]: {err:.2e} (official float32 {errs[row]:.2e})")
    print(f"{key}: worst error on rows held to 1e-5: {worst:.2e} ({strict_rows} rows)")
    assert not bad, f"{key}: " + "; ".join(bad)


@pytest.mark.parametrize("key", sorted(CASES))
def test_model_timesteps_are_what_the_official_model_saw(key):
    case = CASES[key]
    process = our_process(case)
    seen = np.asarray(process.model_timesteps(jnp.asarray(case["t"])))
    assert seen.dtype == np.float32
    np.testing.assert_array_equal(seen, np.float32(case["model_timesteps_seen_f32"]))
    np.testing.assert_array_equal(seen, np.float32(case["cond_fn_timesteps_seen_f32"]))
