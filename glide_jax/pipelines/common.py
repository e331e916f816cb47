"""The two-stage machinery that PITIPipeline and GLIDEPipeline share.

A stage samples one example at a time inside `jax.vmap` (so each output depends only on
(seed, sample id), not on the batch it was sampled in or the device count), and the whole loop of
a stage is one compiled program per (settings, batch shape), run by a ShardedRunner.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import numpy as np

from glide_jax.diffusion.handoff import quantize_low_res
from glide_jax.diffusion.process import process_from_options
from glide_jax.pipelines import stages
from glide_jax.images import to_uint8
from glide_jax.pipelines.presets import Recipe, StageSettings, get_recipe, with_overrides
from glide_jax import parallel
from glide_jax.pipelines.runner import ShardedRunner, Timings

_BASE_STREAM, _UPSAMPLE_STREAM = 0, 1


@dataclasses.dataclass
class PipelineOutput:
    """images: [B, R, R, 3] uint8 (R = 256 after the upsampler, else the base size);
    samples: the same as float32 in [-1, 1]; base_samples: [B, 64, 64, 3] float32 in [-1, 1]."""
    images: np.ndarray
    samples: np.ndarray
    base_samples: np.ndarray

    @property
    def base_images(self) -> np.ndarray:
        return to_uint8(self.base_samples)


def variables(params) -> dict:
    """Accepts a bare params tree or {'params': ...} and returns the latter."""
    if isinstance(params, dict) and set(params) == {"params"}:
        return params
    return {"params": params}


def quantize(x: np.ndarray, how: str) -> np.ndarray:
    """The 8-bit stage hand-off: "round" (GLIDE), "truncate" (PITI) or "none" (clip only)."""
    if how == "none":
        return np.clip(np.asarray(x, np.float32), -1.0, 1.0)
    return np.asarray(quantize_low_res(x, how))


def options_first(pair) -> tuple[dict, dict]:
    """(options, params) from either order (`glide_jax.convert.load_params` gives (params, options))."""
    a, b = pair
    if isinstance(a, dict) and "image_size" in a:
        return a, b
    if isinstance(b, dict) and "image_size" in b:
        return b, a
    raise ValueError("expected a (params, options) pair whose options have 'image_size'")


class TwoStagePipeline:
    """Base 64x64 stage with classifier-free guidance, 8-bit hand-off, conditional upsampler."""

    family = ""
    default_recipe = ""

    def __init__(self, base, upsample=None, recipe: Recipe | str | None = None, mesh=None):
        from glide_jax.models import create_model, resolve_options
        base_options, base_params = options_first(base)
        self.base_options = self._check_options(resolve_options(base_options), super_res=False,
                                                what="base")
        self.base_model = create_model(self.base_options)
        self.upsample_options = self.upsample_model = None
        self.mesh = mesh or parallel.create_mesh()
        self._runners: dict = {}
        self.base_variables = self._replicate(variables(base_params))
        self.upsample_variables = None
        if upsample is not None:
            up_options, up_params = options_first(upsample)
            self.upsample_options = self._check_options(resolve_options(up_options), super_res=True,
                                                        what="upsampler")
            self.upsample_model = create_model(self.upsample_options)
            self.upsample_variables = self._replicate(variables(up_params))
        recipe = recipe or self.default_recipe
        self.recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe

    def _replicate(self, tree):
        """A pytree replicated over the pipeline's mesh."""
        return jax.device_put(tree, parallel.replicated(self.mesh))

    # -- subclasses ------------------------------------------------------------------------
    def _check_options(self, options: dict, super_res: bool, what: str) -> dict:
        if options.get("family", "glide") != self.family:
            raise ValueError(f"{type(self).__name__} needs {self.family} models, the {what} has "
                             f"family {options.get('family')!r}")
        if bool(options.get("super_res")) != super_res:
            raise ValueError(f"the {what} model must {'' if super_res else 'not '}be a super-res "
                             f"model (options['super_res'] = {options.get('super_res')!r})")
        return options

    def base_model_fn(self, params, cond: dict, settings: StageSettings) -> Callable:
        """model_fn(x_t, t_model) -> [N, S, S, 6] for one example's condition (leading axis 1)."""
        raise NotImplementedError

    def upsample_model_fn(self, params, cond: dict, low_res) -> Callable:
        raise NotImplementedError

    def denoised_fn(self, cond: dict, stage: str):
        """x0 -> x0 applied before clipping (inpainting), or None."""
        return None

    # -- sampling --------------------------------------------------------------------------
    @property
    def timings(self) -> Timings:
        total = Timings()
        for runner in self._runners.values():
            for f in dataclasses.fields(Timings):
                setattr(total, f.name, getattr(total, f.name) + getattr(runner.timings, f.name))
        return total

    def _runner(self, stage: str, settings: StageSettings) -> ShardedRunner:
        key = (stage, settings)
        if key not in self._runners:
            fn = self._base_program if stage == "base" else self._upsample_program
            self._runners[key] = ShardedRunner(functools.partial(fn, settings), self.mesh)
        return self._runners[key]

    def cond_fn(self, params, cond: dict):
        """fn(x_t, t_model) -> gradient for the base stage's mean (CLIP guidance), or None."""
        return None

    def _stage(self, params, cond, rng, stream, options, settings, model_fn, denoised_fn,
               cond_fn=lambda p, c: None):
        size = options["image_size"]
        process = process_from_options(options, settings.respacing)

        def one(example):
            example = jax.tree_util.tree_map(lambda a: a[None], example)
            key = jax.random.fold_in(jax.random.fold_in(rng, example["sample_id"][0]), stream)
            return stages.sample(process, model_fn(params, example), (1, size, size, 3), key,
                                 settings, denoised_fn=denoised_fn(example),
                                 cond_fn=cond_fn(params, example))[0]

        return jax.vmap(one)(cond)

    def _base_program(self, settings, params, batch, rng):
        cond = dict(batch)
        x = self._stage(params, cond, rng, _BASE_STREAM, self.base_options, settings,
                        lambda p, c: self.base_model_fn(p, c, settings),
                        lambda c: self.denoised_fn(c, "base"), self.cond_fn)
        return {"sample": x}

    def _upsample_program(self, settings, params, batch, rng):
        cond = dict(batch)
        x = self._stage(params, cond, rng, _UPSAMPLE_STREAM, self.upsample_options, settings,
                        lambda p, c: self.upsample_model_fn(p, c, c["low_res"]),
                        lambda c: self.denoised_fn(c, "upsample"))
        return {"sample": x}

    def _sample(self, cond: dict, *, seed: int, sample_ids, recipe, upsample: bool,
                overrides: dict) -> PipelineOutput:
        recipe = with_overrides(recipe or self.recipe, **overrides)
        n = len(next(iter(cond.values())))
        ids = np.arange(n) if sample_ids is None else np.asarray(sample_ids)
        if ids.shape != (n,):
            raise ValueError(f"sample_ids must have one id per example ({n}), got shape {ids.shape}")
        rng = jax.random.PRNGKey(seed)
        base_cond = {**self.base_condition(cond), "sample_id": ids.astype(np.int32)}
        base = self._runner("base", recipe.base)(self.base_variables, base_cond, rng)["sample"]
        final = base
        if upsample and self.upsample_model is not None:
            up_cond = {**self.upsample_condition(cond), "sample_id": ids.astype(np.int32),
                       "low_res": quantize(base, recipe.quantization)}
            final = self._runner("upsample", recipe.upsample)(
                self.upsample_variables, up_cond, rng)["sample"]
        return PipelineOutput(images=to_uint8(final), samples=final, base_samples=base)

    def base_condition(self, cond: dict) -> dict:
        return cond

    def upsample_condition(self, cond: dict) -> dict:
        return cond
