"""Device mesh, sharding rules for parameters and optimizer state, and global batches.

Rules are data, not model code: every leaf of at least `fsdp_min_size` elements is split along
its largest axis divisible by the `fsdp` mesh size; smaller leaves are replicated. Because the
rule depends only on a leaf's shape, params, their EMA copies and Adam's moments (same shapes)
get the same sharding. Batches are split along the batch axis over both mesh axes.
"""
from __future__ import annotations

from typing import Any, Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXES = ("data", "fsdp")


def create_mesh(mesh_config, devices=None) -> Mesh:
    """Mesh of shape (data, fsdp) over all devices (data = -1: devices // fsdp)."""
    devices = jax.devices() if devices is None else devices
    n, fsdp = len(devices), int(mesh_config.fsdp)
    data = n // fsdp if mesh_config.data == -1 else int(mesh_config.data)
    if data * fsdp != n:
        raise ValueError(f"mesh data={mesh_config.data} x fsdp={fsdp} does not cover the {n} "
                         f"devices (config.mesh.data * config.mesh.fsdp must equal {n})")
    # Auto axes: shardings are constraints XLA propagates (models stay sharding-agnostic).
    auto = (jax.sharding.AxisType.Auto,) * 2
    try:
        return jax.make_mesh((data, fsdp), DATA_AXES, devices=devices, axis_types=auto)
    except (TypeError, ValueError, AssertionError):
        return Mesh(np.asarray(devices).reshape(data, fsdp), DATA_AXES, axis_types=auto)


def leaf_spec(shape, fsdp_size: int, min_size: int) -> P:
    """PartitionSpec of one leaf: its largest fsdp-divisible axis over 'fsdp', or replicated."""
    if fsdp_size <= 1 or int(np.prod(shape, dtype=np.int64)) < min_size:
        return P()
    for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
        if shape[axis] % fsdp_size == 0:
            spec = [None] * len(shape)
            spec[axis] = "fsdp"
            return P(*spec)
    return P()


def tree_shardings(tree, mesh: Mesh, min_size: int):
    """NamedSharding per leaf of a (possibly abstract) pytree, by `leaf_spec`."""
    fsdp = mesh.shape["fsdp"]

    def one(x):
        shape = getattr(x, "shape", ())
        return NamedSharding(mesh, leaf_spec(tuple(shape), fsdp, min_size))
    return jax.tree.map(one, tree)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis over data x fsdp; other axes replicated."""
    return NamedSharding(mesh, P(DATA_AXES))


def global_batch(local_batch: Mapping[str, np.ndarray], mesh: Mesh,
                 keys=None) -> dict:
    """This process's batch (numpy, B/process_count rows) -> global jax Arrays sharded over
    (data, fsdp). Only `keys` (default: all) are transferred."""
    sharding = batch_sharding(mesh)
    out = {}
    for key, value in local_batch.items():
        if keys is not None and key not in keys:
            continue
        value = np.asarray(value)
        global_shape = (value.shape[0] * jax.process_count(),) + value.shape[1:]
        out[key] = jax.make_array_from_process_local_data(sharding, value, global_shape)
    return out


def check_batch_divisible(batch_size: int, microbatches: int, mesh: Mesh) -> None:
    shards = mesh.shape["data"] * mesh.shape["fsdp"]
    micro = batch_size // microbatches
    if micro % shards:
        raise ValueError(f"train.batch_size {batch_size} / train.microbatches {microbatches} = "
                         f"{micro} is not divisible by the {shards} batch shards of the mesh "
                         f"(data x fsdp = {dict(mesh.shape)})")


def describe(tree: Any) -> str:
    """One line: how many leaves/elements are sharded vs replicated (for the log)."""
    sharded = replicated_n = 0
    for x in jax.tree.leaves(tree):
        if getattr(x, "sharding", None) is not None and not x.sharding.is_fully_replicated:
            sharded += x.size
        else:
            replicated_n += getattr(x, "size", 0)
    return f"{sharded:,} elements sharded over fsdp, {replicated_n:,} replicated"
