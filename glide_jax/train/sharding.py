"""Sharding rules for parameters and optimizer state (the mesh and global batches are
`glide_jax.parallel`'s).

Rules are data, not model code: every leaf of at least `fsdp_min_size` elements is split along
its largest axis divisible by the `fsdp` mesh size; smaller leaves are replicated. Because the
rule depends only on a leaf's shape, params, their EMA copies and Adam's moments (same shapes)
get the same sharding. Batches are split along the batch axis over both mesh axes.
"""
from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from glide_jax.parallel import num_batch_shards


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


def check_batch_divisible(batch_size: int, microbatches: int, mesh: Mesh) -> None:
    shards = num_batch_shards(mesh)
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
