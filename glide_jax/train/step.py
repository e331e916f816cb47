"""Pure train and eval steps: diffusion loss, microbatched gradients, optimizer, EMA, sampler.

    batch (global, sharded) -> t, w ~ schedule sampler; noise; x_t = q_sample(x_0, t, noise)
      -> model(x_t, model_timesteps(t), condition, train=True)  [dropout key per step]
      -> diffusion.training_losses -> per-sample loss (+ EXTRA_LOSSES) -> mean(loss * w)
      -> grads (averaged over microbatches) -> optax update (frozen parts: zero) -> EMA
      -> sampler update with the per-sample losses (before weighting)

A non-finite loss or gradient norm leaves params, optimizer state, EMA and sampler state as they
were (`finite` = 0 in the metrics); the host then stops or carries on (config.train.nan_policy).
"""
from __future__ import annotations

from typing import Any, Callable, Dict

import jax
import jax.numpy as jnp
import optax

from glide_jax.modes import null_condition
from glide_jax.train.state import TrainState, update_ema

NUM_QUARTILES = 4
TERMS = ("loss", "mse", "vb")

# Extra per-sample loss terms, by name (config.train.extra_losses). This is the seam for the PITI
# upsampler's perceptual (x0.004) and adversarial (x0.01) losses (PITI `gaussian_diffusion.py` `training_losses`, `vgg.py`, `adv.py`), which a later
# issue adds. A term is fn(ctx) -> ([B] float32 weighted loss) where ctx is a dict with
# x_start, x_t, t, noise, model_output (float32), pred_xstart (unclipped, from the
# non-detached network output, eps or x_0), batch and step; the term is added to `loss` and
# logged under its name.
# Terms that carry their own trainable state (a discriminator) also need a state slot in
# TrainState and their own update, added with them.
EXTRA_LOSSES: Dict[str, Callable[[Dict[str, Any]], jax.Array]] = {}
# The batch entries a step reads (the rest, e.g. captions or ref_ori, stay on the host).
MODEL_BATCH_KEYS = ("image", "ref", "low_res", "tokens", "mask")


def model_kwargs(batch: Dict[str, jax.Array], options: Dict[str, Any]) -> Dict[str, jax.Array]:
    """The conditioning keyword arguments of the network for a data batch."""
    kwargs = {}
    if options["family"] == "piti":
        kwargs["ref"] = batch["ref"]
    else:
        kwargs["tokens"], kwargs["mask"] = batch["tokens"], batch["mask"]
    if options["super_res"]:
        kwargs["low_res"] = batch["low_res"]
    return kwargs


def per_sample_losses(model, diffusion, options, extra_losses, params, batch, t, noise,
                      dropout_key, step, train=True) -> Dict[str, jax.Array]:
    """{"loss", "mse", "vb", *extra}: each [B] float32, before importance weighting."""
    x_start = batch["image"]
    x_t = diffusion.q_sample(x_start, t, noise)
    rngs = {"dropout": dropout_key} if train else None
    out = model.apply({"params": params}, x_t, diffusion.model_timesteps(t),
                      **model_kwargs(batch, options), train=train, rngs=rngs)
    out = out.astype(jnp.float32)
    terms = dict(diffusion.training_losses(out, x_start, t, noise))
    if extra_losses:
        ctx = dict(x_start=x_start, x_t=x_t, t=t, noise=noise, model_output=out, batch=batch,
                   step=step, pred_xstart=diffusion.predict_xstart_from_output(out, x_t, t))
        for name in extra_losses:
            terms[name] = EXTRA_LOSSES[name](ctx)
            terms["loss"] = terms["loss"] + terms[name]
    return terms


def _split_microbatches(tree, m: int):
    """[B, ...] -> [m, B/m, ...], microbatch k = rows k, k+m, ... (spread over every shard)."""
    return jax.tree.map(lambda x: jnp.swapaxes(x.reshape((x.shape[0] // m, m) + x.shape[1:]),
                                               0, 1), tree)


def _masked_global_norm(tree, mask):
    leaves = [g for g, keep in zip(jax.tree.leaves(tree), jax.tree.leaves(mask)) if keep]
    return optax.global_norm(leaves) if leaves else jnp.zeros((), jnp.float32)


def make_grad_fn(model, diffusion, sampler, options, config):
    """grad_fn(state, batch) -> (loss, per-sample terms [B], t [B], grads): the step's draws
    (t, noise, dropout keys from fold_in(state.rng, state.step)), the importance-weighted mean
    loss and its gradient, averaged over config.train.microbatches."""
    micro = int(config.train.microbatches)
    extra = tuple(config.train.extra_losses)
    p2_gamma, p2_k = float(config.train.p2_gamma), float(config.train.p2_k)

    def grad_fn(state: TrainState, batch):
        step_key = jax.random.fold_in(state.rng, state.step)
        t_key, noise_key, dropout_key = jax.random.split(step_key, 3)
        batch_size = batch["image"].shape[0]
        t, weights = sampler.sample(state.sampler_state, t_key, batch_size)
        noise = jax.random.normal(noise_key, batch["image"].shape, jnp.float32)

        def loss_fn(params, mb, k):
            terms = per_sample_losses(model, diffusion, options, extra, params, mb["batch"],
                                      mb["t"], mb["noise"], jax.random.fold_in(dropout_key, k),
                                      state.step)
            loss = terms["loss"]
            if p2_gamma:
                # P2 weighting of the mse term (logged mse stays unweighted).
                loss = loss + (diffusion.p2_weight(mb["t"], p2_gamma, p2_k) - 1.0) * terms["mse"]
            return jnp.mean(loss * mb["weights"]), terms

        value_and_grad = jax.value_and_grad(loss_fn, has_aux=True)
        inputs = dict(batch=batch, t=t, noise=noise, weights=weights)
        if micro == 1:
            (loss, terms), grads = value_and_grad(state.params, inputs, 0)
            return loss, terms, t, grads

        def body(acc, xs):
            mb, k = xs
            (l, terms), g = value_and_grad(state.params, mb, k)
            return jax.tree.map(jnp.add, acc, (l, g)), terms
        zeros = (jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, state.params))
        (loss, grads), terms = jax.lax.scan(
            body, zeros, (_split_microbatches(inputs, micro), jnp.arange(micro)))
        loss, grads = loss / micro, jax.tree.map(lambda g: g / micro, grads)
        # back to batch order [B] (undo the microbatch interleave)
        terms = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1).reshape(-1), terms)
        t = jnp.swapaxes(_split_microbatches(t, micro), 0, 1).reshape(-1)
        return loss, terms, t, grads

    return grad_fn


def make_train_step(model, diffusion, sampler, tx, options, config, mask, lr_fn):
    """train_step(state, batch) -> (state, outputs); pure, for jax.jit with donated state."""
    rates = tuple(float(r) for r in config.ema_rates)
    num_t = diffusion.num_timesteps
    grad_fn = make_grad_fn(model, diffusion, sampler, options, config)

    def train_step(state: TrainState, batch):
        loss, terms, t, grads = grad_fn(state, batch)
        grad_norm = _masked_global_norm(grads, mask)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new = state.replace(
            step=state.step + 1, params=params, opt_state=opt_state,
            ema_params=update_ema(state.ema_params, params, rates),
            sampler_state=sampler.update(state.sampler_state, t,
                                         jax.lax.stop_gradient(terms["loss"])))
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        kept = state.replace(step=state.step + 1)
        new = jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, kept)

        # Raw outputs; the loop turns them into glide_jax.train.metrics' collection.
        outputs = {"loss": loss, "grad_norm": grad_norm, "learning_rate": lr_fn(state.step),
                   "skipped": 1.0 - finite.astype(jnp.float32),
                   # numbered like checkpoints: the step this update would have produced
                   "nonfinite_step": jnp.where(finite, jnp.iinfo(jnp.int32).max,
                                               state.step + 1),
                   "t_quartile": t_quartile(t, num_t), "terms": terms}
        return new, outputs

    return train_step


def make_eval_step(model, diffusion, options):
    """eval_step(params, batch, key) -> {"t_quartile" [B], "terms": per-sample losses [B]} at
    uniform t without dropout (glide_jax.train.metrics.eval_collection reduces them).

    PITI base models also get `mse_null` (the same t and noise with the null condition) and
    `cond_gain` = mse_null - mse: how much the condition lowers the denoising error. A gain near
    zero means the model ignores its condition (e.g. cross-attention that is still uniform).
    """
    num_t = diffusion.num_timesteps
    with_null = options["family"] == "piti" and not options["super_res"]

    def eval_step(params, batch, key):
        t_key, noise_key = jax.random.split(key)
        b = batch["image"].shape[0]
        t = jax.random.randint(t_key, (b,), 0, num_t, jnp.int32)
        noise = jax.random.normal(noise_key, batch["image"].shape, jnp.float32)
        terms = per_sample_losses(model, diffusion, options, (), params, batch, t, noise,
                                  None, 0, train=False)
        if with_null:
            null_batch = dict(batch, ref=null_condition(batch["ref"]))
            null = per_sample_losses(model, diffusion, options, (), params, null_batch, t, noise,
                                     None, 0, train=False)
            terms["mse_null"] = null["mse"]
            terms["cond_gain"] = null["mse"] - terms["mse"]
        return {"t_quartile": t_quartile(t, num_t), "terms": terms}

    return eval_step


def t_quartile(t, num_timesteps: int):
    """The quarter of [0, num_timesteps) each timestep falls in, [B] int32."""
    return jnp.clip(t * NUM_QUARTILES // num_timesteps, 0, NUM_QUARTILES - 1).astype(jnp.int32)


def eval_terms(options) -> tuple:
    """The per-sample terms eval_step returns for a model."""
    with_null = options["family"] == "piti" and not options["super_res"]
    return TERMS + (("mse_null", "cond_gain") if with_null else ())
