"""Orbax checkpoints of a training workdir: state + input-pipeline position + config.

Layout: WORKDIR/checkpoints/<step>/{state, data, config}. `state` is the TrainState pytree
(sharded arrays restore straight into their target shardings), `data` the grain iterator
position (one file per process), `config` the config and resolved model options as JSON.
Saves are asynchronous and atomic (orbax writes a temporary directory and renames it when
complete), so a crash during a save leaves the previous checkpoint as the latest.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

CHECKPOINT_DIR = "checkpoints"
ITEMS = ("state", "data", "config")


def checkpoint_dir(workdir: str) -> str:
    """WORKDIR/checkpoints; gs:// (any URL) workdirs are kept as they are."""
    workdir = os.fspath(workdir)
    if "://" in workdir:
        return workdir.rstrip("/") + "/" + CHECKPOINT_DIR
    return os.path.join(os.path.abspath(workdir), CHECKPOINT_DIR)


def _isdir(path: str) -> bool:
    from etils import epath
    return epath.Path(path).is_dir()


def _preservation(ck):
    latest = checkpoint_managers.LatestN(n=int(ck.keep))
    if not ck.best_metric:
        return latest
    best = checkpoint_managers.BestN(
        get_metric_fn=lambda metrics: metrics[ck.best_metric], reverse=ck.best_mode == "min",
        n=int(ck.keep), keep_checkpoints_without_metrics=False)
    return checkpoint_managers.AnyPreservationPolicy([latest, best])


def create_manager(workdir: str, ck=None, read_only: bool = False) -> ocp.CheckpointManager:
    """CheckpointManager over WORKDIR/checkpoints (ck: config.checkpoint; None to only read)."""
    import grain
    options = ocp.CheckpointManagerOptions(
        create=not read_only, read_only=read_only,
        enable_async_checkpointing=bool(ck.async_save) if ck is not None else False,
        preservation_policy=_preservation(ck) if ck is not None else None,
        cleanup_tmp_directories=not read_only)
    handlers = {"state": ocp.StandardCheckpointHandler(),
                "data": grain.checkpoint.CheckpointHandler(),
                "config": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(checkpoint_dir(workdir), options=options, item_names=ITEMS,
                                 item_handlers=handlers)


def config_record(config, options) -> dict:
    """What goes into the `config` item: the config as JSON and the resolved model options."""
    return {"config": json.loads(config.to_json_best_effort()), "options": dict(options)}


def save(manager, step: int, state, data_iterator, record: dict,
         metrics: Optional[dict] = None) -> None:
    import grain
    args = ocp.args.Composite(state=ocp.args.StandardSave(state),
                              data=grain.checkpoint.CheckpointSave(data_iterator),
                              config=ocp.args.JsonSave(record))
    manager.save(int(step), args=args, metrics=metrics, force=True)


def restore(manager, step: int, abstract_state, data_iterator=None):
    """Restore `state` (into abstract_state's shapes/shardings) and, when given, the iterator's
    position in place. Returns the state."""
    import grain
    items = {"state": ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None:
        items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
    restored = manager.restore(int(step), args=ocp.args.Composite(**items))
    return restored["state"]


def numpy_state(manager, step: int) -> dict:
    """The `state` item as nested dicts of numpy arrays (no model or mesh needed)."""
    meta = manager.item_metadata(step)["state"]
    tree = meta.tree if hasattr(meta, "tree") else meta
    target = jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), tree)
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target)))
    return restored["state"]


def latest_step(workdir: str) -> Optional[int]:
    if not _isdir(checkpoint_dir(workdir)):
        return None
    return create_manager(workdir, read_only=True).latest_step()


def read_record(workdir: str, step: Optional[int] = None) -> dict:
    manager = create_manager(workdir, read_only=True)
    step = manager.latest_step() if step is None else step
    return manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]


def load_params(workdir: str, which: str = "ema", step: Optional[int] = None) -> Any:
    """numpy params of a workdir's latest (or given) checkpoint: "ema" (first rate) or "params"."""
    if not _isdir(checkpoint_dir(workdir)):
        raise FileNotFoundError(f"{workdir}: no {CHECKPOINT_DIR}/ directory (not a training "
                                "workdir, or nothing saved yet)")
    manager = create_manager(workdir, read_only=True)
    step = manager.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"{checkpoint_dir(workdir)} holds no finished checkpoint")
    state = numpy_state(manager, step)
    if which == "ema":
        ema = state["ema_params"]
        return ema["0"] if isinstance(ema, dict) else ema[0]
    return state["params"]


def load_for_sampling(workdir: str, use_ema: bool = True):
    """(params, model options) of the latest checkpoint: what sampling pipelines need."""
    params = load_params(workdir, "ema" if use_ema else "params")
    options = read_record(workdir)["options"]
    logging.info("loaded %s params of %s (step %s)", "EMA" if use_ema else "raw", workdir,
                 latest_step(workdir))
    return params, options
