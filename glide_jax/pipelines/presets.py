"""Official sampling recipes as data (glide-text2im's notebooks; PITI `image_sample.py`, `glide_util.sample`), each knob overridable with `.replace(...)`.

A recipe has two stages. Stage settings name the sampler ("ancestral" = p_sample_loop,
"ddim" = ddim_sample_loop, "dpm-solver" = DPM-Solver++(2M)), the respacing string of the process (respace.py `space_timesteps`: "250",
"100", "fast27", "ddim50", ...), the classifier-free guidance scale (1 = conditional only, no
unconditional pass), the initial-noise temperature and DDIM's eta. `guidance_normalize` > 0 blends in the PITI paper's
normalised guidance (our reading of an unreleased formula, see
glide_jax.diffusion.guidance.normalized_guidance); 0, the default, is the released code. The hand-off quantizes the
64x64 sample to 8 bits before the upsampler sees it: GLIDE rounds, PITI truncates
(glide_jax.diffusion.handoff.quantize_low_res).
"""
from __future__ import annotations

import dataclasses

SAMPLERS = ("ancestral", "ddim", "dpm-solver")
QUANTISATIONS = ("round", "truncate", "none")


@dataclasses.dataclass(frozen=True)
class StageSettings:
    """How one diffusion stage is sampled."""
    sampler: str = "ancestral"
    respacing: str = "100"
    guidance_scale: float = 1.0
    guidance_normalize: float = 0.0
    temperature: float = 1.0
    eta: float = 0.0
    clip_denoised: bool = True

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if not str(self.respacing):
            raise ValueError("respacing must be a non-empty timestep_respacing string such as '100'")
        if self.guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0, got {self.guidance_scale}")
        if not 0 <= self.guidance_normalize <= 1:
            raise ValueError("guidance_normalize is a blend factor in [0, 1] (0 = plain guidance), "
                             f"got {self.guidance_normalize}")
        if not 0 < self.temperature <= 2:
            raise ValueError(f"temperature must be in (0, 2], got {self.temperature}")

    @property
    def guided(self) -> bool:
        """Whether the unconditional pass is needed (scale 1 is exactly the conditional model)."""
        return self.guidance_scale != 1.0 or self.guidance_normalize > 0

    @property
    def normalize(self):
        """The `normalize` argument of diffusion.guidance.classifier_free_guidance."""
        return float(self.guidance_normalize) if self.guidance_normalize > 0 else None

    def replace(self, **changes) -> "StageSettings":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A two-stage recipe: base 64x64, 8-bit hand-off, upsampler 256x256."""
    base: StageSettings
    upsample: StageSettings
    quantization: str = "round"

    def __post_init__(self):
        if self.quantization not in QUANTISATIONS:
            raise ValueError(f"quantization must be one of {QUANTISATIONS}, got {self.quantization!r}")

    def replace(self, **changes) -> "Recipe":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


# PITI image_sample.py / sample.sh: base 250 ancestral steps with CFG (sample.sh: 1.3), truncation
# hand-off, upsampler ancestral fast27 at temperature 0.997, no guidance.
PITI = Recipe(
    base=StageSettings(sampler="ancestral", respacing="250", guidance_scale=1.3),
    upsample=StageSettings(sampler="ancestral", respacing="fast27", temperature=0.997),
    quantization="truncate",
)
# PITI inference.py (gradio): 100 base steps, guidance 1.4 by default.
PITI_FAST = PITI.replace(base=PITI.base.replace(respacing="100", guidance_scale=1.4))
# GLIDE text2im notebook: base 100 ancestral steps, CFG 3, rounding hand-off, DDIM fast27 upsampler.
GLIDE = Recipe(
    base=StageSettings(sampler="ancestral", respacing="100", guidance_scale=3.0),
    upsample=StageSettings(sampler="ddim", respacing="fast27", temperature=0.997),
    quantization="round",
)
# GLIDE inpaint notebook: CFG 5, ancestral fast27 upsampler.
GLIDE_INPAINT = GLIDE.replace(
    base=GLIDE.base.replace(guidance_scale=5.0),
    upsample=GLIDE.upsample.replace(sampler="ancestral"),
)
# GLIDE clip_guided notebook: base without CFG (CLIP gradient instead, scale = grad scale 3).
GLIDE_CLIP = GLIDE.replace(base=GLIDE.base.replace(guidance_scale=1.0))

RECIPES = {
    "piti": PITI,
    "piti-fast": PITI_FAST,
    "glide": GLIDE,
    "glide-inpaint": GLIDE_INPAINT,
    "glide-clip": GLIDE_CLIP,
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; expected one of {sorted(RECIPES)}")
    return RECIPES[name]


def with_overrides(recipe: Recipe | str, *, sampler=None, steps=None, guidance_scale=None,
                   guidance_normalize=None, temperature=None, eta=None, upsample_sampler=None,
                   upsample_steps=None, upsample_temperature=None, quantization=None) -> Recipe:
    """A recipe with the given knobs changed; `None` keeps the recipe's value.

    The names are those of `config.sample` (steps = the respacing string, e.g. "250", "fast27").
    """
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    base = recipe.base.replace(sampler=sampler, respacing=None if steps is None else str(steps),
                               guidance_scale=guidance_scale, guidance_normalize=guidance_normalize,
                               temperature=temperature, eta=eta)
    upsample = recipe.upsample.replace(
        sampler=upsample_sampler, respacing=None if upsample_steps is None else str(upsample_steps),
        temperature=upsample_temperature)
    return recipe.replace(base=base, upsample=upsample, quantization=quantization)
