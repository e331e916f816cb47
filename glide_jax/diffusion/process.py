"""The Gaussian diffusion process of GLIDE/PITI, on arrays (NHWC) instead of on a model.

Tables are built in float64 on the host and gathered as float32, which is what the official code
does (`_extract_into_tensor`). Every method is a pure function of its array arguments and can be
traced under `jax.jit` with `t` a traced int array: the tables become compile-time constants.

Timesteps `t` index the (possibly respaced) process: 0 .. num_timesteps-1. A network must be fed
`model_timesteps(t)` instead (the original 0..999 indices, see `model_timesteps`).
"""
from __future__ import annotations

import enum
import functools
import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from glide_jax.diffusion import losses
from glide_jax.diffusion.schedules import get_named_beta_schedule, respace_betas, space_timesteps

# cond_fn(x_t [B,H,W,C], t_model [B] float32) -> gradient of log p(y | x_t), [B,H,W,C].
CondFn = Callable[[jax.Array, jax.Array], jax.Array]
DenoisedFn = Callable[[jax.Array], jax.Array]


class ModelMeanType(enum.Enum):
    PREVIOUS_X = enum.auto()
    START_X = enum.auto()
    EPSILON = enum.auto()


class ModelVarType(enum.Enum):
    LEARNED = enum.auto()
    FIXED_SMALL = enum.auto()
    FIXED_LARGE = enum.auto()
    LEARNED_RANGE = enum.auto()


class LossType(enum.Enum):
    MSE = enum.auto()
    RESCALED_MSE = enum.auto()
    KL = enum.auto()
    RESCALED_KL = enum.auto()


def mean_flat(x):
    """Mean over every axis but the batch axis: [B, ...] -> [B]."""
    return jnp.mean(x, axis=tuple(range(1, x.ndim)))


class GaussianDiffusion:
    """A (possibly respaced) diffusion process with the official attribute and method names.

    betas: float64 [N] of this process (already respaced); timestep_map: int [N], the original
    timestep of each index (identity when not respaced); original_num_steps: T of the process the
    network was trained on.
    """

    def __init__(self, betas, model_mean_type: ModelMeanType, model_var_type: ModelVarType,
                 loss_type: LossType, rescale_timesteps: bool = False, timestep_map=None,
                 original_num_steps: Optional[int] = None):
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or not ((betas > 0).all() and (betas <= 1).all()):
            raise ValueError(f"betas must be a 1-D array in (0, 1], got shape {betas.shape}")
        self.betas = betas
        self.num_timesteps = int(betas.shape[0])
        self.model_mean_type = model_mean_type
        self.model_var_type = model_var_type
        self.loss_type = loss_type
        self.rescale_timesteps = rescale_timesteps
        self.timestep_map = (np.arange(self.num_timesteps, dtype=np.int64) if timestep_map is None
                             else np.asarray(timestep_map, dtype=np.int64))
        self.original_num_steps = original_num_steps or self.num_timesteps

        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.alphas_cumprod_next = np.append(self.alphas_cumprod[1:], 0.0)
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.log_one_minus_alphas_cumprod = np.log(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1)
        self.posterior_variance = (
            betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod))
        # The posterior variance is 0 at t=0; its log is clipped to the t=1 value.
        self.posterior_log_variance_clipped = np.log(
            np.append(self.posterior_variance[1], self.posterior_variance[1:])
            if self.num_timesteps > 1 else self.posterior_variance)
        self.posterior_mean_coef1 = (
            betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod))
        self.posterior_mean_coef2 = (
            (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod))
        fixed_large = np.append(self.posterior_variance[1], betas[1:])
        scale = 1000.0 / self.original_num_steps if rescale_timesteps else 1.0
        ab, ab_prev, ab_next = self.alphas_cumprod, self.alphas_cumprod_prev, \
            self.alphas_cumprod_next
        # Every coefficient is a float64 table gathered as float32 (as the official
        # _extract_into_tensor does): 1 - abar in float32 loses 3 digits near t = 0. The DDIM
        # coefficients, which the official code forms in float32 after the gather, are tables
        # here too, so they are exact to float32 rounding.
        float64_tables = {
            "one_minus_alphas_cumprod": 1.0 - ab,
            "sqrt_alphas_cumprod_prev": np.sqrt(ab_prev),
            "one_minus_alphas_cumprod_prev": 1.0 - ab_prev,
            # sqrt((1 - abar_prev) / (1 - abar)) * sqrt(1 - abar / abar_prev): DDIM's sigma / eta
            "ddim_sigma_per_eta": np.sqrt((1.0 - ab_prev) / (1.0 - ab)) * np.sqrt(1.0 - ab / ab_prev),
            "sqrt_alphas_cumprod_next": np.sqrt(ab_next),
            "sqrt_one_minus_alphas_cumprod_next": np.sqrt(1.0 - ab_next),
            "log_betas": np.log(betas),
            "fixed_large_variance": fixed_large,
            "fixed_large_log_variance": np.log(fixed_large),
            "recip_posterior_mean_coef1": 1.0 / self.posterior_mean_coef1,
            "coef2_over_coef1": self.posterior_mean_coef2 / self.posterior_mean_coef1,
            "model_timesteps": self.timestep_map.astype(np.float64) * scale,
        }
        for name in ("alphas_cumprod", "alphas_cumprod_prev", "alphas_cumprod_next",
                     "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
                     "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
                     "sqrt_recipm1_alphas_cumprod", "posterior_variance",
                     "posterior_log_variance_clipped", "posterior_mean_coef1",
                     "posterior_mean_coef2"):
            float64_tables[name] = getattr(self, name)
        self._tables32 = {k: np.asarray(v, np.float32) for k, v in float64_tables.items()}

    # ----------------------------------------------------------------------------------- helpers
    def _extract(self, name: str, t, ndim: int):
        """tables[name][t] as float32, shaped [B, 1, ..., 1] to broadcast against an ndim array."""
        values = jnp.asarray(self._tables32[name])[t]
        return values.reshape(values.shape + (1,) * (ndim - 1))

    def _extract_full(self, name: str, t, like):
        """tables[name][t] broadcast to the full shape of `like` [B,H,W,C]."""
        return jnp.broadcast_to(self._extract(name, t, like.ndim), like.shape)

    def p2_weight(self, t, gamma: float, k: float = 1.0):
        """P2 weights 1 / (k + SNR(t))^gamma [B] float32, SNR = abar / (1 - abar) (Choi et al.
        2022, "Perception Prioritized Training of Diffusion Models", P2-weighting
        `gaussian_diffusion.py` `training_losses`): with gamma > 0 the mse term counts the noisy
        steps, where the content and layout of an image are decided, more than the nearly clean
        ones. gamma = 0 gives ones (the unweighted objective)."""
        abar = self.alphas_cumprod
        weight = (k + abar / (1.0 - abar)) ** -float(gamma)   # float64 table, then gathered
        return jnp.asarray(weight.astype(np.float32))[t]

    def model_timesteps(self, t):
        """What the network is fed at index t: float32 [B] original timesteps
        (timestep_map[t], times 1000/original_num_steps when rescale_timesteps)."""
        return jnp.asarray(self._tables32["model_timesteps"])[t]

    def _split_output(self, model_output, x_t):
        channels = x_t.shape[-1]
        learned = self.model_var_type in (ModelVarType.LEARNED, ModelVarType.LEARNED_RANGE)
        expected = 2 * channels if learned else channels
        if model_output.shape != x_t.shape[:-1] + (expected,):
            raise ValueError(f"model_output must be {x_t.shape[:-1] + (expected,)} for "
                             f"{self.model_var_type.name} variance, got {model_output.shape}")
        if learned:
            return model_output[..., :channels], model_output[..., channels:]
        return model_output, None

    # ------------------------------------------------------------------------- forward process
    def q_mean_variance(self, x_start, t):
        """Mean, variance and log-variance of q(x_t | x_0); x_start [B,H,W,C]."""
        nd = x_start.ndim
        mean = self._extract("sqrt_alphas_cumprod", t, nd) * x_start
        variance = self._extract_full("one_minus_alphas_cumprod", t, x_start)
        log_variance = self._extract_full("log_one_minus_alphas_cumprod", t, x_start)
        return mean, variance, log_variance

    def q_sample(self, x_start, t, noise):
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise; all [B,H,W,C], t int [B]."""
        nd = x_start.ndim
        return (self._extract("sqrt_alphas_cumprod", t, nd) * x_start
                + self._extract("sqrt_one_minus_alphas_cumprod", t, nd) * noise)

    def q_posterior_mean_variance(self, x_start, x_t, t):
        """Mean, variance and clipped log-variance of q(x_{t-1} | x_t, x_0)."""
        nd = x_t.ndim
        mean = (self._extract("posterior_mean_coef1", t, nd) * x_start
                + self._extract("posterior_mean_coef2", t, nd) * x_t)
        variance = self._extract_full("posterior_variance", t, x_t)
        log_variance = self._extract_full("posterior_log_variance_clipped", t, x_t)
        return mean, variance, log_variance

    # ------------------------------------------------------------------------- reverse process
    def predict_xstart_from_eps(self, x_t, t, eps):
        nd = x_t.ndim
        return (self._extract("sqrt_recip_alphas_cumprod", t, nd) * x_t
                - self._extract("sqrt_recipm1_alphas_cumprod", t, nd) * eps)

    def predict_xstart_from_output(self, model_output, x_t, t):
        """The network's unclipped x_0 prediction, whatever its mean parametrisation (eps, x_0
        or x_{t-1}); model_output as for p_mean_variance."""
        mean_output, _ = self._split_output(model_output, x_t)
        if self.model_mean_type == ModelMeanType.START_X:
            return mean_output
        if self.model_mean_type == ModelMeanType.PREVIOUS_X:
            return self.predict_xstart_from_xprev(x_t, t, mean_output)
        return self.predict_xstart_from_eps(x_t, t, mean_output)

    def predict_eps_from_xstart(self, x_t, t, pred_xstart):
        nd = x_t.ndim
        return ((self._extract("sqrt_recip_alphas_cumprod", t, nd) * x_t - pred_xstart)
                / self._extract("sqrt_recipm1_alphas_cumprod", t, nd))

    def predict_xstart_from_xprev(self, x_t, t, xprev):
        nd = x_t.ndim
        return (self._extract("recip_posterior_mean_coef1", t, nd) * xprev
                - self._extract("coef2_over_coef1", t, nd) * x_t)

    def _model_variance(self, var_values, x_t, t):
        nd = x_t.ndim
        if self.model_var_type == ModelVarType.LEARNED:
            return jnp.exp(var_values), var_values
        if self.model_var_type == ModelVarType.LEARNED_RANGE:
            min_log = self._extract("posterior_log_variance_clipped", t, nd)
            max_log = self._extract("log_betas", t, nd)
            # var_values in [-1, 1] interpolate between the two log-variances (no clamping).
            frac = (var_values + 1) / 2
            log_variance = frac * max_log + (1 - frac) * min_log
            return jnp.exp(log_variance), log_variance
        if self.model_var_type == ModelVarType.FIXED_LARGE:
            names = ("fixed_large_variance", "fixed_large_log_variance")
        else:
            names = ("posterior_variance", "posterior_log_variance_clipped")
        return tuple(self._extract_full(n, t, x_t) for n in names)

    def p_mean_variance(self, model_output, x_t, t, clip_denoised: bool = True,
                        denoised_fn: Optional[DenoisedFn] = None) -> dict:
        """Parameters of p(x_{t-1} | x_t) from the network output at x_t.

        model_output: [B,H,W,2C] (learned variance: mean part then variance part) or [B,H,W,C];
        x_t: [B,H,W,C]; t: int [B]. denoised_fn is applied to the x_0 prediction before clipping.
        Returns dict of [B,H,W,C] arrays: mean, variance, log_variance, pred_xstart.
        """
        mean_output, var_values = self._split_output(model_output, x_t)
        variance, log_variance = self._model_variance(var_values, x_t, t)

        def process_xstart(x):
            if denoised_fn is not None:
                x = denoised_fn(x)
            return jnp.clip(x, -1, 1) if clip_denoised else x

        pred_xstart = process_xstart(self.predict_xstart_from_output(model_output, x_t, t))
        if self.model_mean_type == ModelMeanType.PREVIOUS_X:
            mean = mean_output
        else:
            mean, _, _ = self.q_posterior_mean_variance(pred_xstart, x_t, t)
        return {"mean": mean, "variance": variance, "log_variance": log_variance,
                "pred_xstart": pred_xstart}

    def condition_mean(self, cond_fn: CondFn, p_mean_var: dict, x_t, t):
        """Sohl-Dickstein guidance: mean + variance * cond_fn(x_t, model_timesteps(t))."""
        gradient = cond_fn(x_t, self.model_timesteps(t))
        return p_mean_var["mean"] + p_mean_var["variance"] * gradient

    def condition_score(self, cond_fn: CondFn, p_mean_var: dict, x_t, t) -> dict:
        """Song et al. guidance: shift eps by -sqrt(1 - abar_t) * gradient and re-derive
        pred_xstart and mean (the official PITI version forgets to return; this one returns)."""
        eps = self.predict_eps_from_xstart(x_t, t, p_mean_var["pred_xstart"])
        eps = eps - (self._extract("sqrt_one_minus_alphas_cumprod", t, x_t.ndim)
                     * cond_fn(x_t, self.model_timesteps(t)))
        out = dict(p_mean_var)
        out["pred_xstart"] = self.predict_xstart_from_eps(x_t, t, eps)
        out["mean"], _, _ = self.q_posterior_mean_variance(out["pred_xstart"], x_t, t)
        return out

    def p_sample(self, model_output, x_t, t, noise, clip_denoised: bool = True,
                 denoised_fn: Optional[DenoisedFn] = None,
                 cond_fn: Optional[CondFn] = None) -> dict:
        """Ancestral step x_t -> x_{t-1}; noise [B,H,W,C] ~ N(0, I) (unused where t == 0).

        Returns {"sample", "pred_xstart"}.
        """
        out = self.p_mean_variance(model_output, x_t, t, clip_denoised, denoised_fn)
        mean = out["mean"]
        if cond_fn is not None:
            mean = self.condition_mean(cond_fn, out, x_t, t)
        nonzero = self._nonzero_mask(t, x_t.ndim)
        sample = mean + nonzero * jnp.exp(0.5 * out["log_variance"]) * noise
        return {"sample": sample, "pred_xstart": out["pred_xstart"]}

    @staticmethod
    def _nonzero_mask(t, ndim):
        mask = (jnp.asarray(t) != 0).astype(jnp.float32)
        return mask.reshape(mask.shape + (1,) * (ndim - 1))

    def ddim_sample(self, model_output, x_t, t, eta=0.0, noise=None, clip_denoised: bool = True,
                    denoised_fn: Optional[DenoisedFn] = None,
                    cond_fn: Optional[CondFn] = None) -> dict:
        """DDIM step x_t -> x_{t-1} (learned variance ignored). noise may be None only when eta
        is the Python number 0. Returns {"sample", "pred_xstart"}."""
        out = self.p_mean_variance(model_output, x_t, t, clip_denoised, denoised_fn)
        if cond_fn is not None:
            out = self.condition_score(cond_fn, out, x_t, t)
        nd = x_t.ndim
        eps = self.predict_eps_from_xstart(x_t, t, out["pred_xstart"])
        sigma = eta * self._extract("ddim_sigma_per_eta", t, nd)
        # sqrt(1 - abar_prev - sigma^2), with 1 - abar_prev from its float64 table.
        direction = jnp.sqrt(self._extract("one_minus_alphas_cumprod_prev", t, nd) - sigma ** 2)
        sample = out["pred_xstart"] * self._extract("sqrt_alphas_cumprod_prev", t, nd) \
            + direction * eps
        if noise is None:
            if not (isinstance(eta, (int, float)) and eta == 0):
                raise ValueError("ddim_sample needs noise when eta is not the constant 0")
        else:
            sample = sample + self._nonzero_mask(t, nd) * sigma * noise
        return {"sample": sample, "pred_xstart": out["pred_xstart"]}

    def ddim_reverse_sample(self, model_output, x_t, t, clip_denoised: bool = True,
                            denoised_fn: Optional[DenoisedFn] = None,
                            cond_fn: Optional[CondFn] = None) -> dict:
        """Deterministic DDIM inversion step x_t -> x_{t+1} (eta = 0)."""
        out = self.p_mean_variance(model_output, x_t, t, clip_denoised, denoised_fn)
        if cond_fn is not None:
            out = self.condition_score(cond_fn, out, x_t, t)
        eps = self.predict_eps_from_xstart(x_t, t, out["pred_xstart"])
        nd = x_t.ndim
        sample = (out["pred_xstart"] * self._extract("sqrt_alphas_cumprod_next", t, nd)
                  + self._extract("sqrt_one_minus_alphas_cumprod_next", t, nd) * eps)
        return {"sample": sample, "pred_xstart": out["pred_xstart"]}

    # -------------------------------------------------------------------------------- training
    def vb_terms_bpd(self, model_output, x_start, x_t, t, clip_denoised: bool = False):
        """Per-sample variational-bound term in bits [B]: the decoder NLL at t == 0, else
        KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))."""
        true_mean, _, true_log_variance = self.q_posterior_mean_variance(x_start, x_t, t)
        out = self.p_mean_variance(model_output, x_t, t, clip_denoised)
        if self.model_mean_type == ModelMeanType.PREVIOUS_X:
            mean_diff = true_mean - out["mean"]
        else:
            # Both means are coef1 * x_0 + coef2 * x_t: their difference is coef1 * (x_0 - x_0^)
            # exactly, formed so without cancelling the shared coef2 * x_t in float32.
            mean_diff = self._extract("posterior_mean_coef1", t, x_t.ndim) * (
                x_start - out["pred_xstart"])
        kl = losses.normal_kl(mean_diff, true_log_variance, 0.0, out["log_variance"])
        kl = mean_flat(kl) / math.log(2.0)
        nll = -losses.discretized_gaussian_log_likelihood(
            x_start, out["mean"], 0.5 * out["log_variance"])
        nll = mean_flat(nll) / math.log(2.0)
        return jnp.where(jnp.asarray(t) == 0, nll, kl)

    def training_losses(self, model_output, x_start, t, noise) -> dict:
        """Per-sample loss terms [B] of the network output at x_t = q_sample(x_start, t, noise).

        The caller computes x_t with `q_sample`, runs the network on (x_t, model_timesteps(t)) and
        passes its output here. For learned variances the vb term sees the mean channels through
        stop_gradient (they learn from mse only) and the variance channels learn from vb only.
        Returns {"loss", "mse", "vb"}; vb is 0 when the variance is fixed (loss = mse), and for
        the KL loss types loss = vb (times num_timesteps for RESCALED_KL).
        """
        x_t = self.q_sample(x_start, t, noise)
        mean_output, var_values = self._split_output(model_output, x_t)
        target = {
            ModelMeanType.PREVIOUS_X: lambda: self.q_posterior_mean_variance(x_start, x_t, t)[0],
            ModelMeanType.START_X: lambda: x_start,
            ModelMeanType.EPSILON: lambda: noise,
        }[self.model_mean_type]()
        mse = mean_flat((target - mean_output) ** 2)
        if self.loss_type in (LossType.KL, LossType.RESCALED_KL):
            vb = self.vb_terms_bpd(model_output, x_start, x_t, t)
            scale = self.num_timesteps if self.loss_type == LossType.RESCALED_KL else 1.0
            return {"loss": vb * scale, "mse": mse, "vb": vb * scale}
        if var_values is None:
            return {"loss": mse, "mse": mse, "vb": jnp.zeros_like(mse)}
        frozen = jnp.concatenate([jax.lax.stop_gradient(mean_output), var_values], axis=-1)
        vb = self.vb_terms_bpd(frozen, x_start, x_t, t)
        if self.loss_type == LossType.RESCALED_MSE:
            # The official 1/1000 keeps the vb term from dominating the mse term.
            vb = vb * (self.num_timesteps / 1000.0)
        return {"loss": mse + vb, "mse": mse, "vb": vb}


def create_gaussian_diffusion(*, steps: int = 1000, learn_sigma: bool = False,
                              sigma_small: bool = False, noise_schedule: str = "linear",
                              use_kl: bool = False, predict_xstart: bool = False,
                              rescale_timesteps: bool = False, rescale_learned_sigmas: bool = False,
                              timestep_respacing="") -> GaussianDiffusion:
    """PITI's `create_gaussian_diffusion`: same arguments, defaults and loss/variance choices.

    timestep_respacing: "" (all `steps`), or anything `space_timesteps` accepts.
    """
    betas = get_named_beta_schedule(noise_schedule, steps)
    if use_kl:
        loss_type = LossType.RESCALED_KL
    elif rescale_learned_sigmas:
        loss_type = LossType.RESCALED_MSE
    else:
        loss_type = LossType.MSE
    if timestep_respacing in ("", None):
        timestep_respacing = [steps]
    new_betas, timestep_map = respace_betas(betas, space_timesteps(steps, timestep_respacing))
    if learn_sigma:
        var_type = ModelVarType.LEARNED_RANGE
    else:
        var_type = ModelVarType.FIXED_SMALL if sigma_small else ModelVarType.FIXED_LARGE
    return GaussianDiffusion(
        new_betas,
        model_mean_type=ModelMeanType.START_X if predict_xstart else ModelMeanType.EPSILON,
        model_var_type=var_type, loss_type=loss_type, rescale_timesteps=rescale_timesteps,
        timestep_map=timestep_map, original_num_steps=steps)


# The option keys a process depends on, with the defaults of an option dict that lacks them
# (GLIDE's option dicts have only diffusion_steps and noise_schedule: its process is the learned
# range / eps one with integer model timesteps).
PROCESS_OPTION_DEFAULTS = (("diffusion_steps", 1000), ("learn_sigma", True),
                           ("sigma_small", False), ("noise_schedule", "linear"),
                           ("use_kl", False), ("predict_xstart", False),
                           ("rescale_timesteps", False), ("rescale_learned_sigmas", False))


def process_from_options(options, respacing: str = "") -> GaussianDiffusion:
    """The diffusion process a model's option dict describes (its diffusion keys, as PITI's
    `create_model_and_diffusion` / GLIDE's `create_gaussian_diffusion` read them), respaced for
    sampling when `respacing` is given. Processes are cached: tables are built once."""
    values = tuple(options.get(k, default) for k, default in PROCESS_OPTION_DEFAULTS)
    return _cached_process(*values, str(respacing or ""))


@functools.lru_cache(maxsize=32)
def _cached_process(steps, learn_sigma, sigma_small, noise_schedule, use_kl, predict_xstart,
                    rescale_timesteps, rescale_learned_sigmas, respacing):
    return create_gaussian_diffusion(
        steps=int(steps), learn_sigma=bool(learn_sigma), sigma_small=bool(sigma_small),
        noise_schedule=noise_schedule, use_kl=bool(use_kl),
        predict_xstart=bool(predict_xstart), rescale_timesteps=bool(rescale_timesteps),
        rescale_learned_sigmas=bool(rescale_learned_sigmas), timestep_respacing=respacing)
