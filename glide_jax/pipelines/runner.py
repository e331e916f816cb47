"""Running a whole sampling loop as one compiled program, batch-sharded over every device.

The batch axis is laid out over the (data, fsdp) mesh of all devices of all hosts
(`glide_jax.parallel`, fsdp = 1), parameters are replicated. Each (function, input shapes) pair is lowered and compiled once, ahead of time, so the
first call's compile time is measured on its own and later calls only run.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh

from glide_jax import parallel

def pad_batch(x: np.ndarray, multiple: int) -> np.ndarray:
    """Pads axis 0 up to a multiple of `multiple` by repeating the last row (values stay valid)."""
    n = x.shape[0]
    padded = -(-n // multiple) * multiple
    if padded == n:
        return x
    return np.concatenate([x, np.repeat(x[-1:], padded - n, axis=0)], axis=0)


@dataclasses.dataclass
class Timings:
    """Seconds spent compiling (first call per shape) and running (every call)."""
    compile_s: float = 0.0
    run_s: float = 0.0
    compiles: int = 0
    runs: int = 0
    images: int = 0

    @property
    def images_per_s(self) -> float:
        return self.images / self.run_s if self.run_s else float("nan")


class ShardedRunner:
    """Calls `fn(params, batch, rng)` with `batch` sharded on its leading axis over the mesh.

    fn: a pure function; `params` (any pytree, replicated), `batch` (a dict of host arrays whose
    leading axis is the example axis, padded here to a multiple of the device count), `rng` (a PRNG
    key, replicated). Returns a dict of arrays with the same leading axis, gathered to host numpy
    and cut back to the unpadded size.
    """

    def __init__(self, fn: Callable, mesh: Mesh | None = None):
        self.fn = fn
        self.mesh = mesh or parallel.create_mesh()
        self.replicated = parallel.replicated(self.mesh)
        self.sharded = parallel.batch_sharding(self.mesh)
        self._compiled: dict[Any, Any] = {}
        self.timings = Timings()

    @property
    def num_devices(self) -> int:
        return self.mesh.devices.size

    def __call__(self, params, batch: dict, rng) -> dict:
        sizes = {int(np.shape(v)[0]) for v in batch.values()}
        if len(sizes) != 1:
            raise ValueError(f"batch entries disagree on the batch size: {sizes}")
        (n,) = sizes
        batch = parallel.put_global({k: pad_batch(np.asarray(v), self.num_devices)
                                     for k, v in batch.items()}, self.sharded)
        params = jax.device_put(params, self.replicated)  # no copy when already replicated
        rng = jax.device_put(rng, self.replicated)
        key = jax.tree_util.tree_map(lambda a: (a.shape, str(a.dtype)), (params, batch))
        key = (jax.tree_util.tree_structure((params, batch)), tuple(jax.tree_util.tree_leaves(key)))
        compiled = self._compiled.get(key)
        if compiled is None:
            start = time.perf_counter()
            jitted = jax.jit(self.fn, in_shardings=(self.replicated, self.sharded, self.replicated),
                             out_shardings=self.sharded)
            compiled = jitted.lower(params, batch, rng).compile()
            self._compiled[key] = compiled
            self.timings.compile_s += time.perf_counter() - start
            self.timings.compiles += 1
        start = time.perf_counter()
        out = compiled(params, batch, rng)
        out = jax.block_until_ready(out)
        self.timings.run_s += time.perf_counter() - start
        self.timings.runs += 1
        self.timings.images += n
        return {k: parallel.to_host(v)[:n] for k, v in out.items()}
