"""What a phase builds once (model, process, optimizer, mesh, compiled steps) and its first state.

`build(config)` -> Setup; `restore_or_init` resumes from a workdir's latest checkpoint or creates
the state config.init describes.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Dict

import jax
import jax.numpy as jnp

from glide_jax import models, parallel
from glide_jax.diffusion import process_from_options
from glide_jax.diffusion.resample import create_named_schedule_sampler
from glide_jax.train import checkpoints, config_lib, sharding
from glide_jax.train import state as state_lib
from glide_jax.train import step as step_lib


@dataclasses.dataclass
class Setup:
    """Everything a phase builds once: model, process, optimizer, mesh and compiled steps."""
    config: Any
    options: Dict[str, Any]
    model: Any
    diffusion: Any
    sampler: Any
    tx: Any
    mesh: Any
    abstract_state: Any
    state_shardings: Any
    train_step: Any
    eval_step: Any
    tokenizer: Any = None


def make_tokenizer(config, options):
    """caption -> (tokens [ctx] int32, mask [ctx] bool) for text data (GLIDE), else None."""
    if config.data.mode != "text":
        return None
    from glide_jax.tokenizer import default_tokenizer
    tok = default_tokenizer(int(options["n_vocab"]))
    ctx = int(options["text_ctx"])
    return lambda caption: tok.padded_tokens_and_mask(tok.encode(caption), ctx)


def build(config, devices=None) -> Setup:
    """Setup of a (resolved) config on `devices` (default: all)."""
    options = config_lib.model_options(config)
    mesh = parallel.create_mesh(config.mesh.data, config.mesh.fsdp, devices)
    sharding.check_batch_divisible(config.train.batch_size, config.train.microbatches, mesh)
    model = models.create_model(options)
    diffusion = process_from_options(options)
    sampler = create_named_schedule_sampler(config.train.schedule_sampler,
                                            diffusion.num_timesteps)
    abstract_params = models.abstract_params(options)
    tx = state_lib.create_optimizer(config, abstract_params)
    abstract_state = jax.eval_shape(
        lambda p, r: state_lib.create_state(p, tx, sampler, r, len(config.ema_rates)),
        abstract_params, jax.ShapeDtypeStruct((2,), jnp.uint32))
    shardings = sharding.tree_shardings(abstract_state, mesh, config.mesh.fsdp_min_size)
    mask = state_lib.trainable_mask(abstract_params, config.train.trainable)
    lr_fn = state_lib.learning_rate_schedule(config.optim)
    step_fn = step_lib.make_train_step(model, diffusion, sampler, tx, options, config, mask, lr_fn)
    rep = parallel.replicated(mesh)
    train_step = sharding.CompiledAhead(jax.jit(
        step_fn, in_shardings=(shardings, parallel.batch_sharding(mesh)),
        out_shardings=(shardings, rep), donate_argnums=0), f"train_step/{config.stage or ''}")
    eval_step = sharding.CompiledAhead(jax.jit(
        step_lib.make_eval_step(model, diffusion, options),
        in_shardings=(shardings.params, parallel.batch_sharding(mesh), rep),
        out_shardings=rep), f"eval_step/{config.stage or ''}")
    return Setup(config, options, model, diffusion, sampler, tx, mesh, abstract_state,
                 shardings, train_step, eval_step, make_tokenizer(config, options))


def initial_state(setup: Setup):
    """A fresh TrainState from config.init (random, converted torch weights, another workdir)."""
    config = setup.config
    param_shardings = setup.state_shardings.params
    init_fn = jax.jit(lambda rng: models.init_params(setup.options, rng),
                      out_shardings=param_shardings)
    params = state_lib.initial_params(config, setup.options, setup.abstract_state.params,
                                      lambda: init_fn(jax.random.PRNGKey(config.seed)))
    params = parallel.put_global(params, param_shardings)
    create = jax.jit(lambda p, r: state_lib.create_state(p, setup.tx, setup.sampler, r,
                                                         len(config.ema_rates)),
                     out_shardings=setup.state_shardings)
    rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 1)
    return create(params, rng)


def restore_target(setup: Setup):
    """The abstract TrainState with its shardings: what a checkpoint restores into."""
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        setup.abstract_state, setup.state_shardings)


def restore_or_init(setup: Setup, manager, train_iter):
    latest = manager.latest_step()
    if latest is None:
        logging.info("no checkpoint in %s: initialising", manager.directory)
        return initial_state(setup)
    logging.info("resuming from step %d (%s)", latest, manager.directory)
    return checkpoints.restore(manager, latest, restore_target(setup), train_iter)


