"""`python -m glide_jax.main --mode=sample`: condition files or prompts -> one PNG each plus a grid.

    python -m glide_jax.main --config=configs/coco_stuff.py --workdir=WORKDIR --mode=sample \
        --config.sample.inputs='masks/*.png' --config.sample.output_dir=out

Outputs are named after their input (`<stem>.png`, `<stem>_<k>.png` with several samples per
input; prompts: `<index>_<prompt words>.png`). A rerun skips inputs whose outputs already exist, so
an interrupted run resumes. Only process 0 writes; every process runs the sharded sampler.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re

import jax
import numpy as np
from tqdm import tqdm

from glide_jax.images import enlarge, make_grid, save_png
from glide_jax.pipelines import inputs as _inputs
from glide_jax.pipelines import loading
from glide_jax.pipelines.presets import with_overrides

GRID_NAME = "grid.png"
GRID_MAX_IMAGES = 64
_OVERRIDE_KEYS = ("sampler", "steps", "guidance_scale", "guidance_normalize", "temperature",
                  "upsample_sampler", "upsample_steps", "upsample_temperature", "quantization")


@dataclasses.dataclass(frozen=True)
class Job:
    """One input (a condition file or a prompt) and the PNG files it produces."""
    source: str
    outputs: tuple[str, ...]


def _slug(text: str, max_len: int = 40) -> str:
    words = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return words[:max_len].rstrip("_") or "prompt"


def _output_files(output_dir: str, stem: str, num_samples: int) -> tuple[str, ...]:
    if num_samples == 1:
        return (os.path.join(output_dir, f"{stem}.png"),)
    return tuple(os.path.join(output_dir, f"{stem}_{k}.png") for k in range(num_samples))


def condition_jobs(paths: list[str], output_dir: str, num_samples: int) -> list[Job]:
    """Jobs named after each input's file stem; clashing stems get their folder name prepended."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    clashes = {s for s in stems if stems.count(s) > 1}
    jobs = []
    for path, stem in zip(paths, stems):
        if stem in clashes:
            stem = f"{os.path.basename(os.path.dirname(os.path.abspath(path)))}_{stem}"
        jobs.append(Job(path, _output_files(output_dir, stem, num_samples)))
    return jobs


def prompt_jobs(prompts: list[str], output_dir: str, num_samples: int) -> list[Job]:
    return [Job(p, _output_files(output_dir, f"{i:04d}_{_slug(p)}", num_samples))
            for i, p in enumerate(prompts)]


def pending(jobs: list[Job]) -> list[Job]:
    """The jobs with at least one missing output file."""
    return [j for j in jobs if not all(os.path.exists(f) for f in j.outputs)]


def write_grid(jobs: list[Job], output_dir: str) -> str | None:
    """A grid of (up to 64 of) the jobs' existing outputs, written to <output_dir>/grid.png;
    tiles smaller than images.MIN_TILE pixels are enlarged (nearest), as in training grids."""
    from PIL import Image
    files = [f for j in jobs for f in j.outputs if os.path.exists(f)][:GRID_MAX_IMAGES]
    if not files:
        return None
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    size = max(i.shape[0] for i in images)
    images = np.stack([np.asarray(Image.fromarray(i).resize((size, size), Image.NEAREST))
                       for i in images])
    path = os.path.join(output_dir, GRID_NAME)
    save_png(path, enlarge(make_grid(images), size))
    return path


def _recipe(sample_config, default: str):
    overrides = {k: sample_config.get(k) for k in _OVERRIDE_KEYS}
    return with_overrides(sample_config.recipe or default, **overrides)


def _batches(jobs: list[Job], batch_size: int):
    for start in range(0, len(jobs), batch_size):
        yield jobs[start:start + batch_size]


def run(config, workdir: str) -> list[str]:
    """Samples every input of `config.sample` (keys: get_sample_config()); returns written files."""
    sample = config.sample
    output_dir = sample.output_dir or os.path.join(workdir, "samples")
    pipeline = loading.pipeline_from_config(config, workdir)
    is_piti = pipeline.family == "piti"
    num_samples = int(sample.num_samples)
    if num_samples < 1:
        raise ValueError(f"config.sample.num_samples must be >= 1, got {num_samples}")
    if is_piti:
        if not sample.inputs:
            raise ValueError("PITI sampling needs config.sample.inputs (globs of condition files)")
        jobs = condition_jobs(_inputs.expand_inputs(sample.inputs), output_dir, num_samples)
    else:
        prompts = _inputs.read_prompts(sample.prompts, sample.prompts_file)
        if not prompts:
            raise ValueError("GLIDE sampling needs config.sample.prompts ('a|b|c') or prompts_file")
        jobs = prompt_jobs(prompts, output_dir, num_samples)
    todo = pending(jobs) if sample.skip_existing else jobs
    is_writer = jax.process_index() == 0
    logging.info("sample: %d inputs, %d to do, writing to %s", len(jobs), len(todo), output_dir)
    default_recipe = "piti" if is_piti else ("glide-inpaint" if sample.inpaint_image else "glide")
    recipe = _recipe(sample, default_recipe)
    inpaint = None
    if not is_piti and sample.inpaint_image:
        inpaint = (sample.inpaint_image, sample.inpaint_mask)
    written = []
    # Every output gets its own seed (seed, job index, sample index) so that resuming or changing
    # the batch size reproduces the same images.
    index_of = {j.source: i for i, j in enumerate(jobs)}
    per_batch = max(1, int(sample.batch_size) // num_samples)
    progress = tqdm(total=len(todo), desc="sampling", unit="input", disable=not is_writer)
    for chunk in _batches(todo, per_batch):
        sources = [j.source for j in chunk for _ in range(num_samples)]
        sample_ids = [index_of[j.source] * num_samples + k for j in chunk for k in range(num_samples)]
        kwargs = dict(recipe=recipe, seed=int(sample.seed), sample_ids=sample_ids,
                      upsample=bool(sample.upsample))
        if is_piti:
            ref = pipeline.read_conditions(sources, mask_format=sample.mask_format,
                                           sketch_polarity=sample.sketch_polarity)
            result = pipeline(ref, **kwargs)
        else:
            result = pipeline(sources, inpaint=inpaint, **kwargs)
        if is_writer:
            files = [f for j in chunk for f in j.outputs]
            for path, image in zip(files, result.images):
                save_png(path, image)
            written += files
        progress.update(len(chunk))
    progress.close()
    timings = pipeline.timings
    logging.info("sample: compile %.1fs (first call per shape), sampling %.1fs, %.3f images/s",
                 timings.compile_s, timings.run_s, timings.images_per_s)
    if is_writer and sample.grid:
        grid = write_grid(jobs, output_dir)
        if grid:
            written.append(grid)
    return written
