"""Beta schedules and timestep respacing (host-side float64 NumPy, as in the official code).

Everything here runs once when a process is built; nothing is traced.
"""
from __future__ import annotations

import math
from typing import Sequence, Union

import numpy as np

SectionCounts = Union[str, int, Sequence[int]]


def betas_for_alpha_bar(num_timesteps: int, alpha_bar, max_beta: float = 0.999) -> np.ndarray:
    """Betas of a process whose cumulative product follows `alpha_bar(u)` for u in [0, 1].

    beta_i = min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), max_beta), in Python float64.
    """
    betas = []
    for i in range(num_timesteps):
        u1, u2 = i / num_timesteps, (i + 1) / num_timesteps
        betas.append(min(1 - alpha_bar(u2) / alpha_bar(u1), max_beta))
    return np.array(betas, dtype=np.float64)


def get_named_beta_schedule(name: str, num_timesteps: int) -> np.ndarray:
    """The float64 betas [T] of the named schedule (`linear` or `squaredcos_cap_v2`)."""
    if num_timesteps < 1:
        raise ValueError(f"a diffusion process needs at least 1 step, got {num_timesteps}")
    if name == "linear":
        # Scaled so that the schedule keeps its shape whatever the number of steps.
        scale = 1000 / num_timesteps
        return np.linspace(scale * 0.0001, scale * 0.02, num_timesteps, dtype=np.float64)
    if name == "squaredcos_cap_v2":
        return betas_for_alpha_bar(
            num_timesteps, lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2)
    raise ValueError(f"unknown noise_schedule {name!r}, expected 'linear' or 'squaredcos_cap_v2'")


def _parse_sections(spec: str) -> list:
    try:
        counts = [int(x) for x in spec.split(",")]
    except ValueError:
        raise ValueError(
            f"timestep_respacing {spec!r} is not 'ddimN', 'fast27' or a comma-separated list of "
            "step counts") from None
    return counts


def _space_sections(num_timesteps: int, section_counts: Sequence[int], spec) -> set:
    if not section_counts:
        raise ValueError(f"timestep_respacing {spec!r} names no sections")
    if any(c < 1 for c in section_counts):
        raise ValueError(f"timestep_respacing {spec!r}: every section needs at least 1 step, "
                         f"got {list(section_counts)}")
    size_per, extra = divmod(num_timesteps, len(section_counts))
    start, steps = 0, []
    for i, count in enumerate(section_counts):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise ValueError(
                f"timestep_respacing {spec!r}: cannot divide section {i} of {size} steps (of a "
                f"{num_timesteps}-step process) into {count} steps")
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        # Accumulated float stride and round-half-to-even, exactly as the official code.
        cur = 0.0
        for _ in range(count):
            steps.append(start + round(cur))
            cur += stride
        start += size
    return set(steps)


def space_timesteps(num_timesteps: int, section_counts: SectionCounts) -> set:
    """The set of original timesteps a respaced process keeps.

    section_counts: `"ddimN"` (the smallest integer stride giving exactly N steps), `"fast27"`
    (`"10,10,3,2,2"` with T-1 replaced by T-3), a comma-separated string of per-section counts
    (`"100"`, `"10,10,10"`), an int, or a sequence of ints. Raises ValueError for an impossible or
    malformed request.
    """
    spec = section_counts
    if isinstance(section_counts, int):
        section_counts = [section_counts]
    if isinstance(section_counts, str):
        if section_counts.startswith("ddim"):
            try:
                desired = int(section_counts[len("ddim"):])
            except ValueError:
                raise ValueError(f"timestep_respacing {spec!r}: expected 'ddimN' with an "
                                 "integer N") from None
            for stride in range(1, num_timesteps):
                if len(range(0, num_timesteps, stride)) == desired:
                    return set(range(0, num_timesteps, stride))
            raise ValueError(f"timestep_respacing {spec!r}: no integer stride gives exactly "
                             f"{desired} steps out of {num_timesteps}")
        if section_counts == "fast27":
            try:
                steps = space_timesteps(num_timesteps, "10,10,3,2,2")
            except ValueError as e:
                raise ValueError(f"timestep_respacing 'fast27' needs a longer process than "
                                 f"{num_timesteps} steps ({e})") from None
            # The official recipe trades the noisiest step for T-3 to reduce DDIM artifacts.
            steps.remove(num_timesteps - 1)
            steps.add(num_timesteps - 3)
            return steps
        section_counts = _parse_sections(section_counts)
    return _space_sections(num_timesteps, list(section_counts), spec)


def respace_betas(betas: np.ndarray, use_timesteps) -> tuple:
    """(new float64 betas [N], timestep_map int64 [N]) of the process keeping `use_timesteps`.

    The respaced alphas_cumprod equal the original ones at the kept indices.
    """
    keep = set(int(i) for i in use_timesteps)
    if not keep:
        raise ValueError("a respaced process must keep at least one timestep")
    if min(keep) < 0 or max(keep) >= len(betas):
        raise ValueError(f"kept timesteps must lie in [0, {len(betas)}), got "
                         f"{min(keep)}..{max(keep)}")
    alphas_cumprod = np.cumprod(1.0 - betas, axis=0)
    last, new_betas, timestep_map = 1.0, [], []
    for i, abar in enumerate(alphas_cumprod):
        if i in keep:
            new_betas.append(1 - abar / last)
            last = abar
            timestep_map.append(i)
    return np.array(new_betas, dtype=np.float64), np.array(timestep_map, dtype=np.int64)
