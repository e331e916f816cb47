"""Orbax checkpoints of a training workdir: state + input-pipeline position + config.

Layout: WORKDIR/checkpoints/<step>/{state, data, config}. `state` is the TrainState pytree
(sharded arrays restore straight into their target shardings), `data` the grain iterator
position (one file per process), `config` the config and resolved model options as JSON.
Saves are asynchronous and atomic (orbax writes a temporary directory and renames it when
complete), so a crash during a save leaves the previous checkpoint as the latest.
"""
from __future__ import annotations

import json
from typing import Optional

import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from glide_jax.saved_params import checkpoint_dir

ITEMS = ("state", "data", "config")


def _preservation(ck):
    latest = checkpoint_managers.LatestN(n=int(ck.keep))
    if not ck.best_metric:
        return latest
    best = checkpoint_managers.BestN(
        get_metric_fn=lambda metrics: metrics[ck.best_metric], reverse=ck.best_mode == "min",
        n=int(ck.keep), keep_checkpoints_without_metrics=False)
    return checkpoint_managers.AnyPreservationPolicy([latest, best])


def create_manager(workdir: str, ck) -> ocp.CheckpointManager:
    """CheckpointManager over WORKDIR/checkpoints for a training run (ck: config.checkpoint).
    Items are named at save/restore time; reading alone goes through glide_jax.saved_params."""
    options = ocp.CheckpointManagerOptions(
        create=True, enable_async_checkpointing=bool(ck.async_save),
        preservation_policy=_preservation(ck), cleanup_tmp_directories=True)
    return ocp.CheckpointManager(checkpoint_dir(workdir), options=options)


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
