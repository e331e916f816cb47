"""Sampling loops over a (respaced) process, as `jax.lax.scan` over the steps.

Each loop is a pure, traceable function: wrap it in `jax.jit` with the network parameters and
conditioning as jit arguments (closed-over parameters would be baked in as constants), e.g.

    @jax.jit
    def sample(params, cond, key):
        model_fn = classifier_free_guidance(partial(apply, params), cond, uncond, scale=3.0)
        return p_sample_loop(process, model_fn, (B, 64, 64, 3), key)

A model function is `model_fn(x_t [B,H,W,C], t_model [B] float32) -> model_output` with t_model =
`process.model_timesteps(t)` (original timesteps). The same key gives the same sample.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from glide_jax.diffusion.process import CondFn, DenoisedFn, GaussianDiffusion

ModelFn = Callable[[jax.Array, jax.Array], jax.Array]
Progress = Union[bool, Callable[[int, int], None]]


def _initial_noise(shape, key, noise, temperature):
    """x_T = temperature * (noise if given else N(0, I)); returns (x_T, key for the steps)."""
    key, init_key = jax.random.split(key)
    if noise is None:
        noise = jax.random.normal(init_key, tuple(shape), jnp.float32)
    elif tuple(noise.shape) != tuple(shape):
        raise ValueError(f"initial noise must have shape {tuple(shape)}, got {noise.shape}")
    return jnp.asarray(noise, jnp.float32) * temperature, key


def _print_progress(done, total):
    print(f"sampling step {int(done)}/{int(total)}", flush=True)


def _report(progress: Progress, step_number, total: int):
    """Host-side progress from inside the compiled loop (a no-op unless progress is set)."""
    if not progress:
        return
    fn = _print_progress if progress is True else progress
    jax.debug.callback(lambda done: fn(int(done), total), step_number)


def _batch_t(i, batch_size):
    return jnp.full((batch_size,), i, dtype=jnp.int32)


def _scan_steps(process: GaussianDiffusion, model_fn: ModelFn, shape, key, noise, temperature,
                progress: Progress, step_fn) -> jax.Array:
    """x_T, then x <- step_fn(model_output, x, t, step_key)["sample"] for indices N-1 .. 0.

    The noise of index i comes from split(key, N)[i] (after x_T's split), whatever the sampler.
    """
    x, key = _initial_noise(shape, key, noise, temperature)
    n = process.num_timesteps
    step_keys = jax.random.split(key, n)

    def step(x, i):
        t = _batch_t(i, shape[0])
        out = step_fn(model_fn(x, process.model_timesteps(t)), x, t, step_keys[i])
        _report(progress, n - i, n)
        return out["sample"], None

    x, _ = jax.lax.scan(step, x, jnp.arange(n - 1, -1, -1, dtype=jnp.int32))
    return x


def p_sample_loop(process: GaussianDiffusion, model_fn: ModelFn, shape: Sequence[int],
                  key: jax.Array, *, noise: Optional[jax.Array] = None,
                  temperature: float = 1.0, clip_denoised: bool = True,
                  denoised_fn: Optional[DenoisedFn] = None, cond_fn: Optional[CondFn] = None,
                  progress: Progress = False) -> jax.Array:
    """Ancestral (DDPM) sampling through all steps of `process`, from index N-1 down to 0.

    shape: (B, H, W, C); noise: optional explicit x_T before the temperature scaling (GLIDE/PITI
    upsamplers use temperature 0.997); per-step noise comes from `key`. progress: True prints
    each step from the host, or a callable(step_done, total). Returns x_0 [B,H,W,C] float32.
    """
    def step_fn(model_output, x, t, step_key):
        return process.p_sample(model_output, x, t, jax.random.normal(step_key, x.shape, x.dtype),
                                clip_denoised=clip_denoised, denoised_fn=denoised_fn,
                                cond_fn=cond_fn)

    return _scan_steps(process, model_fn, shape, key, noise, temperature, progress, step_fn)


def ddim_sample_loop(process: GaussianDiffusion, model_fn: ModelFn, shape: Sequence[int],
                     key: jax.Array, *, eta: float = 0.0, noise: Optional[jax.Array] = None,
                     temperature: float = 1.0, clip_denoised: bool = True,
                     denoised_fn: Optional[DenoisedFn] = None, cond_fn: Optional[CondFn] = None,
                     progress: Progress = False) -> jax.Array:
    """DDIM sampling through all steps of `process` (eta = 0: deterministic given x_T).

    Arguments as `p_sample_loop`; cond_fn uses the score-shift rule (`condition_score`).
    Returns x_0 [B,H,W,C] float32.
    """
    deterministic = isinstance(eta, (int, float)) and eta == 0

    def step_fn(model_output, x, t, step_key):
        step_noise = None if deterministic else jax.random.normal(step_key, x.shape, x.dtype)
        return process.ddim_sample(model_output, x, t, eta, step_noise,
                                   clip_denoised=clip_denoised, denoised_fn=denoised_fn,
                                   cond_fn=cond_fn)

    return _scan_steps(process, model_fn, shape, key, noise, temperature, progress, step_fn)


def _dpm_solver_coefficients(process: GaussianDiffusion):
    """Per-transition float64 coefficients of DPM-Solver++(2M) from index i to i-1, i = N-1..1.

    The first transition has no history and the last one is taken first order as well (the
    official `lower_order_final`): the final step size in lambda is several times the previous
    one near t = 0, and the second-order extrapolation there (coefficient h / 2 h_prev > 1) costs
    more than it gains (exact-ODE error on Gaussian data, cosine schedule, 10 steps: 29% with a
    second-order last step, 6% with a first-order one; DDIM 16%).
    """
    abar = process.alphas_cumprod
    alpha, sigma = np.sqrt(abar), np.sqrt(1.0 - abar)
    lam = np.log(alpha) - np.log(sigma)
    src = np.arange(process.num_timesteps - 1, 0, -1)
    dst = src - 1
    h = lam[dst] - lam[src]
    # D = x0 + c * (x0 - x0_prev), c = 1/(2r) with r = h_prev/h; c = 0 (first order) on the
    # first and the last transition.
    c = np.zeros_like(h)
    c[1:-1] = h[1:-1] / (2.0 * h[:-2])
    return {"ratio": sigma[dst] / sigma[src], "phi": -alpha[dst] * np.expm1(-h), "c": c}


def dpm_solver_sample_loop(process: GaussianDiffusion, model_fn: ModelFn, shape: Sequence[int],
                           key: jax.Array, *, noise: Optional[jax.Array] = None,
                           temperature: float = 1.0, clip_denoised: bool = True,
                           denoised_fn: Optional[DenoisedFn] = None,
                           progress: Progress = False) -> jax.Array:
    """DPM-Solver++(2M) (Lu et al. 2022), deterministic, on the steps of `process`.

    Uses only the eps channels of the model output (a learned variance is ignored) and the
    data-prediction form, so clip_denoised/denoised_fn act on each x_0 estimate. The solver walks
    the N respaced indices N-1 -> 0 (N-1 transitions) and returns the x_0 prediction at index 0,
    i.e. N network evaluations: respace the process to 10-25 steps ("20", "ddim25") for speed.
    The first and the last transition are first order (see `_dpm_solver_coefficients`).
    The key only draws x_T when noise is None. Returns x_0 [B,H,W,C] float32.
    """
    x, _ = _initial_noise(shape, key, noise, temperature)
    n = process.num_timesteps
    channels = shape[-1]

    def predict_x0(x, i):
        t = _batch_t(i, shape[0])
        eps = model_fn(x, process.model_timesteps(t))[..., :channels]
        x0 = process.predict_xstart_from_eps(x, t, eps)
        if denoised_fn is not None:
            x0 = denoised_fn(x0)
        return jnp.clip(x0, -1, 1) if clip_denoised else x0

    def step(carry, inputs):
        x, x0_prev = carry
        i, ratio, phi, c = inputs
        x0 = predict_x0(x, i)
        d = x0 + c * (x0 - x0_prev)
        x = ratio * x + phi * d
        _report(progress, n - i, n)
        return (x, x0), None

    if n > 1:
        coeffs = _dpm_solver_coefficients(process)
        inputs = (jnp.arange(n - 1, 0, -1, dtype=jnp.int32),
                  *(jnp.asarray(coeffs[k], jnp.float32) for k in ("ratio", "phi", "c")))
        (x, _), _ = jax.lax.scan(step, (x, jnp.zeros_like(x)), inputs)
    x0 = predict_x0(x, 0)
    _report(progress, n, n)
    return x0
