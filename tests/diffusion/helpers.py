"""The process quantities the official-code references hold, computed by glide_jax."""
import jax
import jax.numpy as jnp

from tests.fixture_utils import nchw_to_nhwc


def _f32_nhwc(a):
    return jnp.asarray(nchw_to_nhwc(a), jnp.float32)


def compute_all(process, ref) -> dict:
    """Every reference quantity from our process, under jit with t traced.

    ref: NCHW arrays x_start, noise, model_output, step_noise, cond_grad, t, and q_sample (the
    truth's x_t, which the later quantities are computed at, as the references were).
    """
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
