"""The training loop: `train_and_evaluate(config, workdir)` runs every phase of a config.

One phase (a PITI stage, or the whole run when the config has no stages) trains in its own
directory (WORKDIR, or WORKDIR/<phase> when config.phases lists several) and resumes from that
directory's latest checkpoint; a phase that is already complete is skipped, and each later
phase starts from the previous phase's final checkpoint (EMA params unless configured).
"""
from __future__ import annotations

import json
import logging
import signal
import time
from typing import List, Optional

import jax
from clu import metric_writers, periodic_actions
from etils import epath

from glide_jax import parallel
from glide_jax.data import pipeline as input_pipeline
from glide_jax.train import checkpoints, config_lib, sharding
from glide_jax.train import fidelity_eval
from glide_jax.train import metrics as train_metrics
from glide_jax.train import state as state_lib
from glide_jax.train import step as step_lib
from glide_jax.train.evaluate import evaluate
from glide_jax.train.setup import build, restore_or_init
from glide_jax.train.step import MODEL_BATCH_KEYS
from glide_jax.train.visualize import GridMaker


class NonFiniteLossError(RuntimeError):
    """Training met a non-finite loss or gradient under nan_policy='stop'."""


class Preempted(Exception):
    """SIGTERM (or a multi-host preemption notice) arrived; a checkpoint was written."""


class _Terminator:
    """Turns SIGTERM into a flag the loop polls (single process); multi-host uses orbax's
    preemption sync point so that every process saves at the same step."""

    def __init__(self):
        self.flag = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread
            self._previous = None
        return self

    def _handle(self, signum, frame):
        logging.warning("SIGTERM received: saving a checkpoint and stopping")
        self.flag = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def should_stop(self, manager, step: int) -> bool:
        if jax.process_count() == 1:
            return self.flag
        return self.flag or manager.reached_preemption(step)


def _check_finite(summary, config, manager, step: int) -> None:
    bad = summary.pop("train/first_nonfinite_step", train_metrics.NO_STEP)
    if bad == train_metrics.NO_STEP:
        return
    if config.train.nan_policy == "skip":
        logging.warning("non-finite loss/gradient: %d step(s) skipped up to step %d (first at "
                        "step %d)", summary.get("train/skipped_steps", 0), step, bad)
        return
    manager.wait_until_finished()
    last = manager.latest_step()
    where = (f"last good checkpoint: step {last} in {manager.directory}" if last is not None
             else "no checkpoint was written before it")
    raise NonFiniteLossError(
        f"non-finite loss or gradient at step {bad} (train.nan_policy='stop'); parameters were "
        f"not updated by that step; {where}. Set --config.train.nan_policy=skip to skip such "
        "steps instead.")


def _flat_hparams(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat_hparams(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float, str, bool)):
            out[f"{prefix}{key}"] = value
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


def train_phase(config, workdir: str, devices=None) -> None:
    """Train one phase in `workdir` up to config.train.num_steps, resuming when possible, on
    `devices` (default: every device of every process)."""
    setup = build(config, devices)
    manager = checkpoints.create_manager(workdir, config.checkpoint)
    record = checkpoints.config_record(config, setup.options)
    train_iter = input_pipeline.create_train_iterator(config.data, config.train.batch_size,
                                                      seed=config.seed, tokenizer=setup.tokenizer)
    state = restore_or_init(setup, manager, train_iter)
    start, num_steps = int(jax.device_get(state.step)), int(config.train.num_steps)
    logging.info("phase %r: step %d of %d; params %s", config.stage or "train", start, num_steps,
                 sharding.describe(state.params))
    writer = metric_writers.create_default_writer(workdir,
                                                  just_logging=jax.process_index() > 0)
    if start == 0:
        writer.write_hparams(_flat_hparams(record["config"]))
    grids = None
    if config.sample_grid.num_images:
        grid_batch = next(input_pipeline.create_val_iterator(
            config.data, config.sample_grid.num_images, seed=config.seed,
            tokenizer=setup.tokenizer))
        grids = GridMaker(setup.model, setup.options, config, setup.mesh, grid_batch)
    name = config.stage or "train"
    if start >= num_steps:
        logging.info("phase %r already complete (step %d)", name, start)
        if grids and not (epath.Path(workdir) / "samples" / f"{name}_final.png").exists():
            grids(state, workdir, f"{name}_final", writer)
    else:
        try:
            _loop(setup, state, start, manager, record, train_iter, writer, grids, workdir)
        finally:
            manager.wait_until_finished()
    writer.close()
    manager.close()


def _loop(setup, state, start, manager, record, train_iter, writer, grids, workdir):
    config = setup.config
    t = config.train
    num_steps, name = int(t.num_steps), config.stage or "train"
    hooks = [periodic_actions.ReportProgress(num_train_steps=num_steps, writer=writer,
                                             every_steps=t.log_every)]
    if t.profile and jax.process_index() == 0:
        hooks.append(periodic_actions.Profile(num_profile_steps=5, logdir=workdir))
    window = train_metrics.Accumulator(train_metrics.train_collection(
        step_lib.TERMS + tuple(t.extra_losses)), "train")
    last_eval = None
    last_time, last_step = time.monotonic(), start
    eval_batch = config.eval.batch_size or t.batch_size
    with _Terminator() as terminator:
        for step in range(start + 1, num_steps + 1):
            with jax.profiler.StepTraceAnnotation("train", step_num=step):
                batch = parallel.global_batch(next(train_iter), setup.mesh, MODEL_BATCH_KEYS)
                state, metrics = setup.train_step(state, batch)
            window.add(metrics)
            for hook in hooks:
                hook(step)
            last = step == num_steps
            save = step % config.checkpoint.every == 0 or last
            stop = terminator.should_stop(manager, step)
            if step % t.log_every == 0 or save or stop:
                summary = window.compute()
                _check_finite(summary, config, manager, step)
                now = time.monotonic()
                summary["train/images_per_sec"] = (
                    (step - last_step) * t.batch_size / max(now - last_time, 1e-9))
                last_time, last_step = now, step
                writer.write_scalars(step, summary)
            if config.eval.every and (step % config.eval.every == 0 or last):
                params = state_lib.sampling_params(state, config.sample_grid.use_ema)
                last_eval = evaluate(setup, params, config.eval.num_batches, eval_batch)
                writer.write_scalars(step, last_eval)
            if save or stop:
                checkpoints.save(manager, step, state, train_iter, record, last_eval)
            if stop:
                manager.wait_until_finished()
                raise Preempted(f"stopped at step {step}; checkpoint saved in "
                                f"{manager.directory}")
            if grids and config.sample_grid.every and step % config.sample_grid.every == 0 \
                    and not last:
                grids(state, workdir, f"{name}_{step:06d}", writer)
    manager.wait_until_finished()
    path = grids(state, workdir, f"{name}_final", writer) if grids else None
    if config.eval.fidelity_examples:
        params = state_lib.sampling_params(state, config.sample_grid.use_ema)
        report_fidelity(setup, params, workdir, num_steps, writer)
    writer.flush()
    logging.info("phase %r done at step %d; samples: %s", name, num_steps, path)


def report_fidelity(setup, params, workdir: str, step: int, writer) -> dict:
    """Mask fidelity (train.fidelity_eval) to TensorBoard, WORKDIR/eval/fidelity_step_N.json and
    the log (and stdout, the main job's last words)."""
    metrics = fidelity_eval.evaluate_fidelity(setup, params, setup.config.eval.fidelity_examples)
    writer.write_scalars(step, metrics)
    if jax.process_index() == 0:
        out = epath.Path(workdir) / "eval"
        out.mkdir(parents=True, exist_ok=True)
        (out / f"fidelity_step_{step:06d}.json").write_text(
            json.dumps({"step": step, **metrics}, indent=1, sort_keys=True))
        print(fidelity_eval.describe(metrics), flush=True)
    fidelity_eval.log(metrics)
    return metrics


def phase_workdirs(config, workdir: str) -> List[tuple]:
    """[(stage name, its workdir)] of the phases this config runs."""
    names = config_lib.phase_names(config)
    if len(names) == 1:
        return [(names[0], workdir)]
    return [(n, f"{workdir.rstrip('/')}/{n}") for n in names]


def resolve_phases(config, workdir: str, overrides: Optional[dict] = None) -> List[tuple]:
    """[(resolved config, workdir)] per phase; every phase is validated before any runs, and a
    phase after the first starts from the previous phase's workdir unless its init says else."""
    out, previous = [], None
    for name, phase_dir in phase_workdirs(config, workdir):
        phase_overrides = dict(overrides or {})
        if previous is not None:
            stage_init = config.stages[name].get("init", {}) if name else {}
            if not (phase_overrides.get("init.from_workdir") or config.init.from_workdir
                    or stage_init.get("from_workdir")):
                phase_overrides["init.from_workdir"] = previous
        out.append((config_lib.resolve(config, name, phase_overrides), phase_dir))
        previous = phase_dir
    return out


def run_phases(phases: List[tuple]) -> None:
    """Train each (resolved config, workdir) of `resolve_phases` in sequence."""
    for phase, phase_dir in phases:
        logging.info("=== phase %r in %s", phase.stage or "train", phase_dir)
        train_phase(phase, phase_dir)


def train_and_evaluate(config, workdir: str, overrides: Optional[dict] = None) -> None:
    """Run every phase of `config` in sequence under `workdir` (see module doc)."""
    run_phases(resolve_phases(config, workdir, overrides))
