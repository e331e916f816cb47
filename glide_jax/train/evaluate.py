"""Validation losses: periodic evaluation during training and `--mode=eval`.

Losses are the training objective without dropout at uniformly drawn t (a fixed key per batch,
so numbers are comparable across checkpoints): loss, mse, vb, and each per quarter of [0, T);
for PITI base models also mse_null and cond_gain (does the model use its condition?).
"""
from __future__ import annotations

import json
import logging
from typing import Dict

import jax
from clu import metric_writers
from etils import epath

from glide_jax import parallel, saved_params
from glide_jax.data import pipeline as input_pipeline
from glide_jax.train import checkpoints
from glide_jax.train import metrics as train_metrics
from glide_jax.train import state as state_lib
from glide_jax.train import step as step_lib
from glide_jax.train.setup import Setup, build, restore_target
from glide_jax.train.step import MODEL_BATCH_KEYS


def evaluate(setup: Setup, params, num_batches: int, batch_size: int) -> Dict[str, float]:
    """Validation losses (overall and per quartile of t) over num_batches val batches."""
    config = setup.config
    it = input_pipeline.create_val_iterator(config.data, batch_size, seed=config.seed,
                                           tokenizer=setup.tokenizer)
    acc = train_metrics.Accumulator(
        train_metrics.eval_collection(step_lib.eval_terms(setup.options)), "eval")
    rep = parallel.replicated(setup.mesh)
    for i in range(num_batches):
        try:
            local = next(it)
        except StopIteration:
            break
        batch = parallel.global_batch(local, setup.mesh, MODEL_BATCH_KEYS)
        key = jax.device_put(jax.random.PRNGKey(10_000 + i), rep)
        acc.add(setup.eval_step(params, batch, key))
    results = acc.compute()
    if not results:
        raise ValueError(f"the validation split {config.data.val_split!r} gave no batch of "
                         f"{batch_size}")
    # A quarter of [0, T) that no sample fell in has no mean.
    return {k: v for k, v in results.items() if v == v}


def run(config, workdir: str) -> Dict[str, float]:
    """Evaluate the latest checkpoint of `workdir` (EMA params when sample_grid.use_ema, and the
    raw params), write the metrics to its TensorBoard log and to workdir/eval/step_<N>.json."""
    setup = build(config)
    step = saved_params.latest_step(workdir)
    if step is None:
        raise FileNotFoundError(f"--mode=eval: no checkpoint under "
                                f"{saved_params.checkpoint_dir(workdir)}")
    with saved_params.reader(workdir) as manager:
        state = checkpoints.restore(manager, step, restore_target(setup))
    batch_size = config.eval.batch_size or config.train.batch_size
    results = {}
    for label, params in (("ema", state.ema_params[0]), ("params", state.params)):
        metrics = evaluate(setup, params, config.eval.num_batches, batch_size)
        results.update({k.replace("eval/", f"eval_{label}/"): v for k, v in metrics.items()})
    if config.eval.fidelity_examples:
        from glide_jax.train import fidelity_eval
        params = state_lib.sampling_params(state, config.sample_grid.use_ema)
        results.update(fidelity_eval.evaluate_fidelity(setup, params,
                                                       config.eval.fidelity_examples))
        fidelity_eval.log(results)
    if jax.process_index() == 0:
        out_dir = epath.Path(workdir) / "eval"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"step_{step:06d}.json").write_text(
            json.dumps({"step": step, **results}, indent=1, sort_keys=True))
    writer = metric_writers.create_default_writer(workdir, just_logging=jax.process_index() > 0)
    writer.write_scalars(step, results)
    writer.close()
    logging.info("eval at step %d: %s", step, results)
    return results
