"""The train state (one pytree), the optimizer, EMA, and where initial params come from.

TrainState: step, params (float32), opt_state, ema_params (one tree per `config.ema_rates`),
rng (the run's base key; the key of step s is fold_in(rng, s), so resuming needs nothing else),
sampler_state (the schedule sampler's pytree). Frozen parts (PITI stage 1 freezes the decoder)
are excluded from the update by `optax.multi_transform`; they still run in training mode.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Tuple

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    opt_state: Any
    ema_params: Tuple[Any, ...]
    rng: jax.Array
    sampler_state: Any


def learning_rate_schedule(optim) -> Callable[[jax.Array], jax.Array]:
    """Linear warmup from 0 over warmup_steps, then constant / cosine / linear decay."""
    lr, warmup = float(optim.learning_rate), int(optim.warmup_steps)
    if optim.schedule == "constant":
        after = optax.constant_schedule(lr)
    elif optim.schedule == "cosine":
        after = optax.cosine_decay_schedule(lr, int(optim.decay_steps), optim.end_lr_factor)
    else:
        after = optax.linear_schedule(lr, lr * optim.end_lr_factor, int(optim.decay_steps))
    if warmup <= 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), after], [warmup])


# Decoder params that only read the task encoder's output and exist in no official model (the
# demo's spatial path, option encoder_spatial): the encoder-only stage trains them with it.
def _encoder_side(path) -> bool:
    return len(path) > 1 and path[0] == "decoder" and path[1].startswith("spatial_proj")


def param_labels(params, trainable: str):
    """'train' / 'frozen' per leaf: PITI's encoder-only stage freezes everything but `encoder`
    (and the decoder's spatial_proj_*, when the model has them)."""
    if trainable == "all":
        return jax.tree.map(lambda _: "train", params)
    flat = traverse_util.flatten_dict(params)
    labels = {k: ("train" if k[0] == trainable or (trainable == "encoder" and _encoder_side(k))
                  else "frozen") for k in flat}
    if "train" not in labels.values():
        raise ValueError(f"train.trainable={trainable!r}: the model has no {trainable!r} params "
                         f"(top-level: {sorted({k[0] for k in flat})})")
    return traverse_util.unflatten_dict(labels)


def create_optimizer(config, params) -> optax.GradientTransformation:
    """Adam/AdamW with the config's schedule and clipping; frozen params get zero updates."""
    o = config.optim
    lr = learning_rate_schedule(o)
    if o.name == "adam":
        tx = optax.adam(lr, b1=o.b1, b2=o.b2, eps=o.eps)
    else:
        tx = optax.adamw(lr, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay)
    if o.grad_clip_norm > 0:
        tx = optax.chain(optax.clip_by_global_norm(o.grad_clip_norm), tx)
    if config.train.trainable == "all":
        return tx
    return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()},
                                 param_labels(params, config.train.trainable))


def trainable_mask(params, trainable: str):
    """Bool per leaf: True where the optimizer updates the leaf."""
    return jax.tree.map(lambda label: label == "train", param_labels(params, trainable))


def sampling_params(state, use_ema: bool):
    """The params grids, evaluations and fidelity sample with: the first EMA copy or the raw."""
    return state.ema_params[0] if use_ema else state.params


def update_ema(ema_params, params, rates):
    """ema <- rate * ema + (1 - rate) * params, per rate (PITI: no warmup or bias correction)."""
    return tuple(jax.tree.map(lambda e, p, r=r: r * e + (1.0 - r) * p, ema, params)
                 for ema, r in zip(ema_params, rates))


def create_state(params, tx, sampler, rng, num_ema: int) -> TrainState:
    """A fresh state around `params` (EMA copies start equal to the params)."""
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                      ema_params=tuple(jax.tree.map(jnp.copy, params) for _ in range(num_ema)),
                      rng=rng, sampler_state=sampler.init_state())


# --------------------------------------------------------------------------- initial params

def _merge_part(params: dict, loaded: dict, part: str, what: str) -> dict:
    """Replace `part` ("all" | "encoder" | "decoder") of params by loaded, strictly (the
    converter's tree check: every missing, unexpected and mis-shaped path is named)."""
    from glide_jax.convert import convert
    target = params if part == "all" else params[part]
    source = loaded if part == "all" else loaded.get(part, loaded)
    shapes = {k: tuple(v.shape) for k, v in convert.flatten(target).items()}
    flat = convert.check_tree(convert.flatten(source), shapes, f"{what} (part {part!r})")
    merged = convert.unflatten({k: np.asarray(v, np.float32) for k, v in flat.items()})
    return merged if part == "all" else {**params, part: merged}


def load_torch_init(params: dict, init, options) -> dict:
    """Apply config.init.torch_checkpoint (numpy params in, numpy params out); init.torch_part
    is one of the converter CLI's parts (full, encoder, decoder, glide-decoder)."""
    from glide_jax import convert
    state_dict = convert.load_state_dict(init.torch_checkpoint)
    part, what = init.torch_part, f"init.torch_checkpoint {init.torch_checkpoint}"
    if part == "glide-decoder":
        # The official decoder comes from GLIDE; a spatial path (encoder_spatial, no official
        # counterpart) keeps its zero initialisation.
        decoder, report = convert.glide_to_piti_decoder(state_dict,
                                                        dict(options, encoder_spatial=False))
        logging.info("decoder from GLIDE %s: %d tensors loaded, %d text tensors dropped",
                     init.torch_checkpoint, len(report.loaded), len(report.dropped))
        decoder = {**decoder, **{k: v for k, v in params["decoder"].items()
                                 if _encoder_side(("decoder", k))}}
        return _merge_part(params, {"decoder": decoder}, "decoder", what)
    if part in ("encoder", "decoder"):
        loaded = convert.torch_to_flax(state_dict, options, part=part)
        return _merge_part(params, {part: loaded}, part, what)
    return _merge_part(params, convert.torch_to_flax(state_dict, options, part="full"), "all",
                       what)


def initial_params(config, options, abstract, init_fn) -> dict:
    """numpy params to start a run from: random (`init_fn()`), then the torch checkpoint, then
    another workdir's latest checkpoint, as config.init says."""
    params = jax.device_get(init_fn())
    init = config.init
    if init.torch_checkpoint:
        params = load_torch_init(params, init, options)
    if init.from_workdir:
        from glide_jax import saved_params
        loaded = saved_params.load_params(init.from_workdir, which=init.from_workdir_params)
        params = _merge_part(params, loaded, init.from_workdir_part,
                             f"init.from_workdir {init.from_workdir}")
        logging.info("params (%s, part %s) from %s", init.from_workdir_params,
                     init.from_workdir_part, init.from_workdir)
    return params
