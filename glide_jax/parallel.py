"""Meshes and host <-> global arrays, for training and sampling alike.

Every program runs over one (data, fsdp) mesh of all devices of all hosts (jax.distributed): the
batch axis is split over both mesh axes, parameters are replicated or (training, FSDP) split by
the rules in `glide_jax.train.sharding`. Sampling uses the same mesh with fsdp = 1.
"""
from __future__ import annotations

from typing import Mapping

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXES = ("data", "fsdp")


def create_mesh(data: int = -1, fsdp: int = 1, devices=None) -> Mesh:
    """Mesh of shape (data, fsdp) over `devices` (default all; data = -1: devices // fsdp)."""
    devices = jax.devices() if devices is None else list(devices)
    n, fsdp = len(devices), int(fsdp)
    data = n // fsdp if data == -1 else int(data)
    if data * fsdp != n:
        raise ValueError(f"mesh data={data} x fsdp={fsdp} does not cover the {n} devices "
                         f"(config.mesh.data * config.mesh.fsdp must equal {n})")
    # Auto axes: shardings are constraints XLA propagates (models stay sharding-agnostic).
    auto = (jax.sharding.AxisType.Auto,) * 2
    try:
        return jax.make_mesh((data, fsdp), DATA_AXES, devices=devices, axis_types=auto)
    except (TypeError, ValueError, AssertionError):
        return Mesh(np.asarray(devices).reshape(data, fsdp), DATA_AXES, axis_types=auto)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis over data x fsdp; other axes replicated."""
    return NamedSharding(mesh, P(DATA_AXES))


def num_batch_shards(mesh: Mesh) -> int:
    return int(mesh.shape["data"] * mesh.shape["fsdp"])


def put_global(tree, shardings):
    """Host arrays that every process holds in full -> global arrays with `shardings` (one
    sharding, or a tree of them matching `tree`)."""
    def one(x, s):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, s, lambda index: x[index])
    if isinstance(shardings, jax.sharding.Sharding):
        return jax.tree.map(lambda x: one(x, shardings), tree)
    return jax.tree.map(one, tree, shardings)


def global_batch(local_batch: Mapping[str, np.ndarray], mesh: Mesh, keys=None) -> dict:
    """This process's rows of a batch (numpy, B / process_count each) -> global arrays sharded
    over (data, fsdp). Only `keys` (default: all) are transferred."""
    sharding = batch_sharding(mesh)
    out = {}
    for key, value in local_batch.items():
        if keys is not None and key not in keys:
            continue
        value = np.asarray(value)
        global_shape = (value.shape[0] * jax.process_count(),) + value.shape[1:]
        out[key] = jax.make_array_from_process_local_data(sharding, value, global_shape)
    return out


def to_host(x) -> np.ndarray:
    """A global array -> the full numpy array on every process."""
    if jax.process_count() > 1:
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)
