"""Diffusion references: every variance / mean / loss type of PITI's GaussianDiffusion and GLIDE's
process, over schedules, step counts and respacings, with a fake model, one timestep per batch
row (see tools/make_reference.py)."""
from __future__ import annotations

import numpy as np

from ref_common import float64_islands_lifted, randn_like_returns, recipe_input, rel_err

SEED = 7
SHAPE = (3, 2, 2)  # C, H, W of each row

# (name, create_gaussian_diffusion kwargs). PITI's constructor: its option space.
_PITI_DEFAULT = dict(steps=1000, learn_sigma=True, sigma_small=False,
                     noise_schedule="squaredcos_cap_v2", use_kl=False, predict_xstart=False,
                     rescale_timesteps=True, rescale_learned_sigmas=True, timestep_respacing="")
PITI_CASES = []
for _schedule in ("linear", "squaredcos_cap_v2"):
    for _var, _var_kw in (("learned_range", dict(learn_sigma=True)),
                          ("fixed_large", dict(learn_sigma=False, sigma_small=False)),
                          ("fixed_small", dict(learn_sigma=False, sigma_small=True))):
        for _mean, _mean_kw in (("eps", dict(predict_xstart=False)),
                                ("x0", dict(predict_xstart=True))):
            PITI_CASES.append((f"{_schedule}_{_var}_{_mean}",
                               dict(_PITI_DEFAULT, noise_schedule=_schedule, **_var_kw,
                                    **_mean_kw)))
PITI_CASES += [
    ("cos_learned_range_eps_mse", dict(_PITI_DEFAULT, rescale_learned_sigmas=False)),
    ("cos_learned_range_eps_kl", dict(_PITI_DEFAULT, use_kl=True)),
    ("cos_fixed_large_x0_mse", dict(_PITI_DEFAULT, learn_sigma=False, predict_xstart=True,
                                    rescale_learned_sigmas=False)),
    ("cos_fixed_small_eps_kl", dict(_PITI_DEFAULT, learn_sigma=False, sigma_small=True,
                                    use_kl=True)),
    ("cos_respaced_100", dict(_PITI_DEFAULT, timestep_respacing="100")),
    ("linear_respaced_100", dict(_PITI_DEFAULT, noise_schedule="linear",
                                 timestep_respacing="100")),
    ("cos_ddim25", dict(_PITI_DEFAULT, timestep_respacing="ddim25")),
    ("cos_fast27", dict(_PITI_DEFAULT, timestep_respacing="fast27")),
    ("cos_sections_10_10_10", dict(_PITI_DEFAULT, timestep_respacing="10,10,10")),
    ("cos_respaced_100_no_rescale", dict(_PITI_DEFAULT, timestep_respacing="100",
                                         rescale_timesteps=False)),
    ("linear_fixed_small_x0_ddim25", dict(_PITI_DEFAULT, noise_schedule="linear",
                                          learn_sigma=False, sigma_small=True,
                                          predict_xstart=True, timestep_respacing="ddim25")),
    ("cos_4000_steps", dict(_PITI_DEFAULT, steps=4000)),
    ("linear_4000_steps_ddim50_kl", dict(_PITI_DEFAULT, steps=4000, noise_schedule="linear",
                                         timestep_respacing="ddim50", use_kl=True)),
    ("cos_4000_steps_no_rescale", dict(_PITI_DEFAULT, steps=4000, rescale_timesteps=False)),
]
# Types no PITI constructor option reaches; built with GaussianDiffusion(...) directly.
PITI_DIRECT = [
    ("direct_learned_eps", dict(model_var_type="LEARNED", model_mean_type="EPSILON",
                                loss_type="MSE")),
    ("direct_learned_range_prev_x", dict(model_var_type="LEARNED_RANGE",
                                         model_mean_type="PREVIOUS_X", loss_type="RESCALED_MSE")),
    ("direct_fixed_large_prev_x_kl", dict(model_var_type="FIXED_LARGE",
                                          model_mean_type="PREVIOUS_X", loss_type="KL")),
]
GLIDE_CASES = [(f"{s}_{r or 'full'}", dict(steps=1000, noise_schedule=s, timestep_respacing=r))
               for s in ("linear", "squaredcos_cap_v2")
               for r in ("", "100", "fast27", "ddim50", "27")]


def _timesteps(n):
    return np.array(sorted({0, 1, 2, 3, n // 2, n - 2, n - 1}), np.int64)


def _case_inputs(name, t, var_type, mean_type):
    b = len(t)
    shape = (b,) + SHAPE
    x_start = recipe_input(SEED, name + "/x_start", shape, "uniform")
    mean = recipe_input(SEED, name + "/mean_out", shape, "normal")
    if var_type in ("LEARNED_RANGE",):
        var = recipe_input(SEED, name + "/var_out", shape, "uniform")
        out = np.concatenate([mean, var], axis=1)
    elif var_type == "LEARNED":
        var = recipe_input(SEED, name + "/var_out", shape, "uniform") * 4.5 - 5.5
        out = np.concatenate([mean, var.astype(np.float32)], axis=1)
    else:
        out = mean
    return {"x_start": x_start, "noise": recipe_input(SEED, name + "/noise", shape, "normal"),
            "step_noise": recipe_input(SEED, name + "/step_noise", shape, "normal"),
            "cond_grad": recipe_input(SEED, name + "/cond_grad", shape, "normal") * 0.1,
            "model_output": out.astype(np.float32), "t": t}


def _run_case(family, diffusion, inputs, dtype, seen):
    """Every quantity for one precision; `seen` collects what the fake model received."""
    import torch as th
    x0 = th.from_numpy(inputs["x_start"]).to(dtype)
    noise = th.from_numpy(inputs["noise"]).to(dtype)
    model_out = th.from_numpy(inputs["model_output"]).to(dtype)
    grad = th.from_numpy(inputs["cond_grad"]).to(dtype)
    t = th.from_numpy(inputs["t"])

    def fake_model(x, ts, **kwargs):
        seen.setdefault("model_timesteps", ts.clone())
        return model_out

    def cond_fn(x, ts, **kwargs):
        seen.setdefault("cond_fn_timesteps", ts.clone())
        return grad

    res = {}
    x_t = diffusion.q_sample(x0, t, noise=noise)
    res["q_sample"] = x_t
    res["q_mean"], res["q_var"], res["q_logvar"] = diffusion.q_mean_variance(x0, t)
    res["q_post_mean"], res["q_post_var"], res["q_post_logvar"] = \
        diffusion.q_posterior_mean_variance(x0, x_t, t)
    for clip in (0, 1):
        pmv = diffusion.p_mean_variance(fake_model, x_t, t, clip_denoised=bool(clip))
        for k, v in pmv.items():
            res[f"p_{k}_clip{clip}"] = v
    with randn_like_returns(th.from_numpy(inputs["step_noise"])):
        s = diffusion.p_sample(fake_model, x_t, t, clip_denoised=True)
        res["p_sample"], res["p_sample_pred_xstart"] = s["sample"], s["pred_xstart"]
        res["p_sample_cond_fn"] = diffusion.p_sample(fake_model, x_t, t, clip_denoised=True,
                                                     cond_fn=cond_fn, model_kwargs={})["sample"]
        for eta in (0.0, 0.5):
            res[f"ddim_sample_eta{eta}"] = diffusion.ddim_sample(
                fake_model, x_t, t, clip_denoised=True, eta=eta)["sample"]
        if family == "glide":  # PITI's condition_score returns None: its DDIM + cond_fn crashes
            res["ddim_sample_cond_fn_eta0.0"] = diffusion.ddim_sample(
                fake_model, x_t, t, clip_denoised=True, eta=0.0, cond_fn=cond_fn,
                model_kwargs={})["sample"]
    res["ddim_reverse_sample"] = diffusion.ddim_reverse_sample(
        fake_model, x_t, t, clip_denoised=True, eta=0.0)["sample"]
    if family == "piti":
        terms = diffusion.training_losses(fake_model, x0, t, None, None, noise=noise)
        res["loss"] = terms["loss"]
        if "mse" in terms:
            res["mse"] = terms["mse"]
        if "vb" in terms:
            res["vb"] = terms["vb"]
    # GLIDE's p_mean_variance also returns "extra" (None for a plain model output).
    return {k: v.detach().numpy() for k, v in res.items() if v is not None}


def _piti_diffusion(kwargs):
    from pretrained_diffusion import gaussian_diffusion as gd, script_util
    from pretrained_diffusion.respace import SpacedDiffusion, space_timesteps
    if "model_var_type" in kwargs:
        betas = gd.get_named_beta_schedule("squaredcos_cap_v2", 1000)
        return SpacedDiffusion(
            use_timesteps=space_timesteps(1000, [1000]), betas=betas,
            model_mean_type=gd.ModelMeanType[kwargs["model_mean_type"]],
            model_var_type=gd.ModelVarType[kwargs["model_var_type"]],
            loss_type=gd.LossType[kwargs["loss_type"]], rescale_timesteps=True)
    return script_util.create_gaussian_diffusion(**kwargs)


def _glide_diffusion(kwargs):
    from glide_text2im import model_creation
    return model_creation.create_gaussian_diffusion(**kwargs)


def _modules(family):
    if family == "glide":
        from glide_text2im import gaussian_diffusion, respace
    else:
        from pretrained_diffusion import gaussian_diffusion, respace
    return (gaussian_diffusion, respace)


def diffusion_references():
    import torch as th
    records, arrays = [], {}
    cases = ([("piti", n, k) for n, k in PITI_CASES + PITI_DIRECT]
             + [("glide", n, k) for n, k in GLIDE_CASES])
    for family, name, kwargs in cases:
        diffusion = (_piti_diffusion if family == "piti" else _glide_diffusion)(kwargs)
        var_type, mean_type = (diffusion.model_var_type.name, diffusion.model_mean_type.name) \
            if family == "piti" else ("LEARNED_RANGE", "EPSILON")
        inputs = _case_inputs(f"{family}/{name}", _timesteps(diffusion.num_timesteps), var_type,
                              mean_type)
        seen32, seen64 = {}, {}
        out32 = _run_case(family, diffusion, inputs, th.float32, seen32)
        with float64_islands_lifted(_modules(family)):
            out64 = _run_case(family, diffusion, inputs, th.float64, seen64)
        row_errs = {k: [rel_err(out32[k][i], out64[k][i]) for i in range(len(inputs["t"]))]
                    for k in out64}
        record = {
            "family": family, "name": name, "constructor": kwargs,
            "num_timesteps": int(diffusion.num_timesteps),
            "timestep_map": [int(v) for v in getattr(diffusion, "timestep_map",
                                                     range(diffusion.num_timesteps))],
            "model_var_type": var_type, "model_mean_type": mean_type,
            "loss_type": diffusion.loss_type.name if family == "piti" else None,
            "t": inputs["t"].tolist(),
            "model_timesteps_seen_f32": seen32["model_timesteps"].numpy().tolist(),
            "model_timesteps_seen_dtype_f32": str(seen32["model_timesteps"].dtype),
            "cond_fn_timesteps_seen_f32": seen32["cond_fn_timesteps"].numpy().tolist(),
            "official_f32_row_rel_err_vs_f64": row_errs,
        }
        for k in ("x_start", "noise", "step_noise", "cond_grad", "model_output"):
            arrays[f"{family}/{name}/input/{k}"] = inputs[k]
        for k, v in out64.items():
            arrays[f"{family}/{name}/{k}"] = v.astype(np.float64)
        worst_key = max(row_errs, key=lambda k: max(row_errs[k]))
        worst = max(row_errs[worst_key])
        print(f"  {family}/{name}: N={diffusion.num_timesteps}, {var_type}/{mean_type}, "
              f"official f32 worst row rel err {worst:.2e} ({worst_key}, row "
              f"{int(np.argmax(row_errs[worst_key]))})", flush=True)
        records.append(record)
    return records, arrays
