"""PITIPipeline: condition images -> base 64x64 with classifier-free guidance -> upsampler 256x256.

    pipe = PITIPipeline.from_pretrained("ckpt/piti_base_mask", "ckpt/piti_upsample_mask")
    ref = pipe.read_conditions(["mask.png"])          # [B, 256, 256, C] in [-1, 1]
    out = pipe(ref, seed=0)                           # out.images: [B, 256, 256, 3] uint8
    out = pipe(ref, steps="100", guidance_scale=1.5, sampler="ddim")   # any knob overridable

Recipe "piti" (image_sample.py): 250 ancestral base steps, guidance 1.3, truncation hand-off,
upsampler ancestral fast27 at temperature 0.997. The null condition is PITI's all-ones `ref`.
"""
from __future__ import annotations

import numpy as np

from glide_jax import model_fns, modes
from glide_jax.pipelines import inputs
from glide_jax.pipelines.common import PipelineOutput, TwoStagePipeline
from glide_jax.pipelines.presets import StageSettings


class PITIPipeline(TwoStagePipeline):
    """PITI sampling. base / upsample: (params, options) or (options, params) pairs, e.g.
    `glide_jax.convert.load_params(dir)`; `upsample=None` samples the base stage only."""

    family = "piti"
    default_recipe = "piti"

    def __init__(self, base, upsample=None, recipe=None, mesh=None):
        super().__init__(base, upsample, recipe, mesh)
        self.mode = self.base_options.get("mode") or "coco"
        self.channels = modes.condition_channels(self.mode)
        if self.upsample_options is not None:
            up_mode = self.upsample_options.get("mode") or "coco"
            if modes.condition_channels(up_mode) != self.channels:
                raise ValueError(f"base mode {self.mode!r} and upsampler mode {up_mode!r} take "
                                 "different conditions")

    @classmethod
    def from_pretrained(cls, base_dir, upsample_dir=None, **kwargs) -> "PITIPipeline":
        """From converted checkpoint dirs (`python -m glide_jax.convert to-flax ... --out DIR`)."""
        from glide_jax.saved_params import load_converted
        return cls(load_converted(base_dir),
                   load_converted(upsample_dir) if upsample_dir else None, **kwargs)

    def read_conditions(self, paths, mask_format: str = "auto",
                        sketch_polarity: str = "auto") -> np.ndarray:
        """Condition files (PITI colour masks, COCO-Stuff label maps, sketches) -> [B, 256, 256, C]."""
        return np.stack([inputs.read_condition(p, self.mode, mask_format=mask_format,
                                               sketch_polarity=sketch_polarity) for p in paths])

    def __call__(self, ref, *, seed: int = 0, sample_ids=None, recipe=None, upsample: bool = True,
                 **overrides) -> PipelineOutput:
        """ref: [B, 256, 256, C] float in [-1, 1] (or a list of condition file paths).

        Overrides (None keeps the recipe's value): sampler, steps, guidance_scale,
        guidance_normalize, temperature, eta, upsample_sampler, upsample_steps,
        upsample_temperature, quantization. sample_ids: one int per example (default 0..B-1);
        an output depends only on (seed, its id).
        """
        if isinstance(ref, (list, tuple)) and ref and isinstance(ref[0], str):
            ref = self.read_conditions(ref)
        ref = inputs.validate_condition(ref, self.mode)
        return self._sample({"ref": ref}, seed=seed, sample_ids=sample_ids, recipe=recipe,
                            upsample=upsample, overrides=overrides)

    # -- model functions (one example at a time, leading axis 1) ---------------------------
    def base_model_fn(self, params, cond, settings: StageSettings):
        return self.guided_model_fn(params, cond["ref"], settings.guidance_scale,
                                    settings.normalize)

    def guided_model_fn(self, params, ref, guidance_scale: float, normalize=None):
        """model_fn(x_t [N,S,S,3], t_model [N]) -> [N,S,S,6]: PITI's classifier-free guidance
        (glide_jax.model_fns.piti_model_fn: conditions encoded once, outside the loop)."""
        return model_fns.piti_model_fn(self.base_model, params, ref, guidance_scale, normalize)

    def upsample_model_fn(self, params, cond, low_res):
        return model_fns.piti_model_fn(self.upsample_model, params, cond["ref"],
                                       low_res=low_res)
