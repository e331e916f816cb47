"""Sharding rules for parameters and optimizer state (the mesh and global batches are
`glide_jax.parallel`'s).

Rules are data, not model code: every leaf of at least `fsdp_min_size` elements is split along
its largest axis divisible by the `fsdp` mesh size; smaller leaves are replicated. Because the
rule depends only on a leaf's shape, params, their EMA copies and Adam's moments (same shapes)
get the same sharding. Batches are split along the batch axis over both mesh axes.
"""
from __future__ import annotations

import itertools
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


_BARRIERS = itertools.count()  # barrier names must be unique within a run; every process
                               # compiles the same steps in the same order


class CompiledAhead:
    """A jitted step that is compiled before its first run and, with several processes, run
    for the first time only once every process has compiled it (one process: plain jit).

    The first run of a computation spanning processes sets up the CPU collectives (gloo), which
    wait 30 s for a late peer; a process that compiles slower than that (a loaded host) would
    fail the run. Compiling ahead (`lower().compile()`) and then meeting at a barrier of the
    coordination service (orbax's `sync_global_processes`, generous timeout) keeps the peers
    together. One executable is kept per input signature (shapes, dtypes, shardings).
    """

    def __init__(self, jitted, label: str, timeout_s: int = 1800):
        self._jitted, self._label, self._timeout = jitted, label, timeout_s
        self._compiled: dict = {}

    def lower(self, *args):
        return self._jitted.lower(*args)

    def __call__(self, *args):
        if jax.process_count() == 1:  # nothing to wait for: jit's own cache, no per-step work
            return self._jitted(*args)
        leaves, treedef = jax.tree.flatten(args)
        key = (treedef, tuple((np.shape(x), getattr(x, "dtype", type(x)),
                               getattr(x, "sharding", None)) for x in leaves))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._jitted.lower(*args).compile()
            from orbax.checkpoint import multihost
            multihost.sync_global_processes(
                f"glide_jax/{self._label}/compiled/{next(_BARRIERS)}",
                timeout=self._timeout, processes=set(range(jax.process_count())))
            self._compiled[key] = compiled
        return compiled(*args)
