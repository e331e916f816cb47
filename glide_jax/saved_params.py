"""Params to sample from or to start a run from, wherever they were saved.

* a training workdir: its orbax checkpoints (WORKDIR/checkpoints/<step>/{state, data, config},
  written by `glide_jax.train.checkpoints`), read here without the input pipeline's packages:
  the latest step, the saved config record and model options, EMA or raw params as numpy;
* a converted folder (`python -m glide_jax.convert to-flax ... --out DIR`): orbax params plus
  options.json (`glide_jax.convert.load_params`).

Both the training loop (init.from_workdir) and the sampling pipelines read params through here.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Optional, Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"


def checkpoint_dir(workdir: str) -> str:
    """WORKDIR/checkpoints; gs:// (any URL) workdirs are kept as they are."""
    workdir = os.fspath(workdir)
    if "://" in workdir:
        return workdir.rstrip("/") + "/" + CHECKPOINT_DIR
    return os.path.join(os.path.abspath(workdir), CHECKPOINT_DIR)


def _isdir(path: str) -> bool:
    from etils import epath
    return epath.Path(path).is_dir()


def reader(workdir: str) -> ocp.CheckpointManager:
    """A read-only CheckpointManager over WORKDIR/checkpoints (its items restored by name)."""
    options = ocp.CheckpointManagerOptions(create=False, read_only=True,
                                           enable_async_checkpointing=False,
                                           save_interval_steps=0)
    registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
    registry.add("state", ocp.args.StandardRestore, ocp.StandardCheckpointHandler)
    registry.add("config", ocp.args.JsonRestore, ocp.JsonCheckpointHandler)
    return ocp.CheckpointManager(checkpoint_dir(workdir), options=options,
                                 handler_registry=registry)


def latest_step(workdir: str) -> Optional[int]:
    """The latest finished checkpoint step of a workdir, or None."""
    if not _isdir(checkpoint_dir(workdir)):
        return None
    with reader(workdir) as manager:
        return manager.latest_step()


def _step_or_raise(manager, workdir: str, step: Optional[int]) -> int:
    step = manager.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"{checkpoint_dir(workdir)} holds no finished checkpoint")
    return int(step)


def _require_dir(workdir: str) -> None:
    if not _isdir(checkpoint_dir(workdir)):
        raise FileNotFoundError(f"{workdir}: no {CHECKPOINT_DIR}/ directory (not a training "
                                "workdir, or nothing saved yet)")


def read_record(workdir: str, step: Optional[int] = None) -> dict:
    """The `config` item of a checkpoint: {"config": the run's config, "options": model options}."""
    _require_dir(workdir)
    with reader(workdir) as manager:
        step = _step_or_raise(manager, workdir, step)
        return manager.restore(step, args=ocp.args.Composite(
            config=ocp.args.JsonRestore()))["config"]


def numpy_state(manager, step: int) -> dict:
    """The `state` item as nested dicts of numpy arrays (no model or mesh needed)."""
    meta = manager.item_metadata(step)["state"]
    tree = meta.tree if hasattr(meta, "tree") else meta
    target = jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), tree)
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target)))
    return restored["state"]


def load_params(workdir: str, which: str = "ema", step: Optional[int] = None) -> Any:
    """numpy params of a workdir's latest (or given) checkpoint: "ema" (first rate) or "params"."""
    if which not in ("ema", "params"):
        raise ValueError(f"which must be 'ema' or 'params', got {which!r}")
    _require_dir(workdir)
    with reader(workdir) as manager:
        state = numpy_state(manager, _step_or_raise(manager, workdir, step))
    if which == "ema":
        ema = state["ema_params"]
        return ema["0"] if isinstance(ema, dict) else ema[0]
    return state["params"]


def load_for_sampling(workdir: str, use_ema: bool = True) -> tuple[Any, dict]:
    """(params, model options) of a workdir's latest checkpoint."""
    params = load_params(workdir, "ema" if use_ema else "params")
    options = read_record(workdir)["options"]
    logging.info("loaded %s params of %s (step %s)", "EMA" if use_ema else "raw", workdir,
                 latest_step(workdir))
    return params, options


def load_workdir(workdir: str, use_ema: bool = True, phases: Sequence[str] = ()):
    """(params, options) of the latest checkpoint under `workdir`; a multi-phase run trains each
    phase in WORKDIR/<phase>, and the last phase that saved wins."""
    for phase in reversed(tuple(phases)):
        if latest_step(os.path.join(workdir, phase)) is not None:
            return load_for_sampling(os.path.join(workdir, phase), use_ema=use_ema)
    return load_for_sampling(workdir, use_ema=use_ema)


def load_converted(directory: str) -> tuple[Any, dict]:
    """(params, options) of a converted folder (`python -m glide_jax.convert to-flax`)."""
    from glide_jax.convert import load_params as load_converted_params
    return load_converted_params(directory)
