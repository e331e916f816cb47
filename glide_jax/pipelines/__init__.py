"""Sampling pipelines: PITI (condition image -> 256x256) and GLIDE (prompt -> 256x256).

    from glide_jax.pipelines import PITIPipeline
    pipe = PITIPipeline.from_pretrained("ckpt/piti_base_mask", "ckpt/piti_upsample_mask")
    out = pipe(pipe.read_conditions(["mask.png"]), seed=0, guidance_scale=1.5)
    out.images  # [B, 256, 256, 3] uint8

Recipes (official defaults, every knob overridable): see `presets.RECIPES`.
"""
from glide_jax.pipelines.common import PipelineOutput
from glide_jax.pipelines.glide import ClipGuidance, GLIDEPipeline
from glide_jax.images import make_grid, save_png, to_uint8
from glide_jax.pipelines.inputs import expand_inputs, read_condition, read_prompts, validate_condition
from glide_jax.pipelines.piti import PITIPipeline
from glide_jax.pipelines.presets import RECIPES, Recipe, StageSettings, get_recipe, with_overrides
from glide_jax.sample_config import get_sample_config

__all__ = [
    "ClipGuidance", "GLIDEPipeline", "PITIPipeline", "PipelineOutput", "RECIPES", "Recipe",
    "StageSettings", "expand_inputs", "get_recipe", "get_sample_config", "make_grid",
    "read_condition", "read_prompts", "save_png", "to_uint8", "validate_condition",
    "with_overrides",
]
