"""GLIDEPipeline: prompt -> base 64x64 with classifier-free guidance -> text upsampler 256x256.

    pipe = GLIDEPipeline.from_pretrained("ckpt/glide_base", "ckpt/glide_upsample",
                                         tokenizer=GlideTokenizer.from_pretrained("gpt2"))
    out = pipe(["a corgi in a field"], seed=0)                    # out.images [B, 256, 256, 3]
    out = inpaint_pipe(["a cat"], inpaint_image=img, inpaint_mask=mask)   # 1 = keep the pixel

Recipes: "glide" (text2im notebook: 100 ancestral steps, guidance 3, rounding hand-off, DDIM
fast27 upsampler at temperature 0.997) and "glide-inpaint" (guidance 5, ancestral fast27
upsampler, the known pixels pasted into x0 at every step). CLIP guidance: pass a `ClipGuidance`
(noised CLIP image/text encoders; glide-text2im `notebooks/clip_guided.ipynb`) and use the "glide-clip" recipe.
"""
from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

from glide_jax import model_fns
from glide_jax.tokenizer import default_tokenizer
from glide_jax.diffusion import guidance
from glide_jax.pipelines import inputs
from glide_jax.pipelines.common import PipelineOutput, TwoStagePipeline
from glide_jax.pipelines.presets import StageSettings, get_recipe



class ClipGuidance(Protocol):
    """The CLIP-guidance hook (glide-text2im `notebooks/clip_guided.ipynb`), for noised CLIP models.

    params: a pytree (replicated with the base model's); prepare(prompts) -> dict of host arrays
    [B, ...] (e.g. CLIP tokens and lengths), sharded with the batch; cond_fn(params, example) ->
    fn(x_t [1,64,64,3], t_model [1]) -> gradient like x_t, already times the guidance scale;
    build it with glide_jax.diffusion.guidance.gradient_cond_fn(score_fn, scale).
    """
    params: object

    def prepare(self, prompts: Sequence[str]) -> dict: ...

    def cond_fn(self, params, example: dict) -> Callable: ...


class GLIDEPipeline(TwoStagePipeline):
    """GLIDE text-to-image and inpainting. base / upsample: (params, options) pairs."""

    family = "glide"
    default_recipe = "glide"

    def __init__(self, base, upsample=None, recipe=None, mesh=None, tokenizer=None,
                 clip_guidance: ClipGuidance | None = None):
        super().__init__(base, upsample, recipe, mesh)
        self.inpaint = bool(self.base_options.get("inpaint"))
        if recipe is None and self.inpaint:
            self.recipe = get_recipe("glide-inpaint")
        if self.upsample_options is not None and bool(self.upsample_options.get("inpaint")) != self.inpaint:
            raise ValueError("base and upsampler must both be inpainting models or both not")
        self.tokenizer = tokenizer or default_tokenizer(int(self.base_options.get("n_vocab", 50257)))
        self.clip_guidance = clip_guidance
        if clip_guidance is not None:
            self.base_variables = {"model": self.base_variables,
                                   "clip": self._replicate(clip_guidance.params)}

    @classmethod
    def from_pretrained(cls, base_dir, upsample_dir=None, **kwargs) -> "GLIDEPipeline":
        from glide_jax.saved_params import load_converted
        return cls(load_converted(base_dir),
                   load_converted(upsample_dir) if upsample_dir else None, **kwargs)

    def __call__(self, prompts: Sequence[str], *, inpaint_image=None, inpaint_mask=None,
                 inpaint=None, seed: int = 0, sample_ids=None, recipe=None, upsample: bool = True,
                 **overrides) -> PipelineOutput:
        """prompts: B strings. Inpainting models also take inpaint_image ([H, W, 3] or
        [B, H, W, 3] float in [-1, 1], or a file path) and inpaint_mask ([H, W(, 1)] or
        [B, H, W(, 1)], 1 = keep, or a file path, white = keep); `inpaint=(image, mask)` is the
        same pair. Overrides as PITIPipeline.__call__."""
        if isinstance(prompts, str):
            prompts = [prompts]
        if not prompts:
            raise ValueError("prompts must be a non-empty list of strings")
        text_ctx = int(self.base_options.get("text_ctx", 128))
        tokens, mask = self.tokenizer.encode_batch(list(prompts), text_ctx)
        cond = {"tokens": tokens, "mask": mask}
        if inpaint is not None:
            inpaint_image, inpaint_mask = inpaint
        if self.inpaint:
            cond.update(self._inpaint_inputs(inpaint_image, inpaint_mask, len(prompts)))
        elif inpaint_image is not None or inpaint_mask is not None:
            raise ValueError("inpaint_image/inpaint_mask need inpainting models (options['inpaint'])")
        if self.clip_guidance is not None:
            cond.update({f"clip_{k}": v for k, v in self.clip_guidance.prepare(prompts).items()})
        return self._sample(cond, seed=seed, sample_ids=sample_ids, recipe=recipe,
                            upsample=upsample, overrides=overrides)

    def _inpaint_inputs(self, image, mask, n: int) -> dict:
        """64 and 256 versions of the source image and mask (GLIDE's inpaint notebook)."""
        if image is None or mask is None:
            raise ValueError("inpainting models need inpaint_image and inpaint_mask")
        base_size = int(self.base_options["image_size"])
        up_size = int(self.upsample_options["image_size"]) if self.upsample_options else base_size * 4
        if isinstance(image, str):
            image64, image256 = inputs.read_image(image, base_size), inputs.read_image(image, up_size)
        else:
            image = np.asarray(image)
            image = inputs.validate_unit_range(image if image.ndim == 4 else image[None], "inpaint_image")
            if image.shape[-1] != 3:
                raise ValueError(f"inpaint_image must have 3 channels, got shape {image.shape}")
            image64, image256 = _resize(image, base_size, "bicubic"), _resize(image, up_size, "bicubic")
        if isinstance(mask, str):
            mask64 = inputs.read_inpaint_mask(mask, base_size)
        else:
            mask = np.asarray(mask, np.float32)
            mask = mask[..., None] if mask.shape[-1] != 1 else mask
            mask = mask if mask.ndim == 4 else mask[None]
            if mask.min() < 0 or mask.max() > 1:
                raise ValueError("inpaint_mask values must be in {0, 1} (1 = keep the pixel)")
            mask64 = _resize(mask, base_size, "nearest")
        factor = up_size // base_size
        mask64 = np.broadcast_to(mask64, (n,) + mask64.shape[-3:]).astype(np.float32)
        mask256 = mask64.repeat(factor, axis=1).repeat(factor, axis=2)

        def batch(x):
            return np.broadcast_to(x, (n,) + x.shape[-3:]).astype(np.float32)
        return {"inpaint_image": batch(image64) * mask64, "inpaint_mask": mask64,
                "inpaint_image_up": batch(image256) * mask256, "inpaint_mask_up": mask256}

    def upsample_condition(self, cond: dict) -> dict:
        out = {"tokens": cond["tokens"], "mask": cond["mask"]}
        if self.inpaint:
            out["inpaint_image"], out["inpaint_mask"] = cond["inpaint_image_up"], cond["inpaint_mask_up"]
        return out

    # -- model functions (one example at a time, leading axis 1) ---------------------------
    def _kwargs(self, cond) -> dict:
        kwargs = {"tokens": cond["tokens"], "mask": cond["mask"]}
        if self.inpaint:
            kwargs.update(inpaint_image=cond["inpaint_image"], inpaint_mask=cond["inpaint_mask"])
        return kwargs

    def base_model_fn(self, params, cond, settings: StageSettings):
        if self.clip_guidance is not None:
            params = params["model"]
        return self.guided_model_fn(params, cond, settings.guidance_scale, settings.normalize)

    def guided_model_fn(self, params, cond, guidance_scale: float, normalize=None):
        """model_fn(x_t, t_model) -> [N,S,S,6]: GLIDE's classifier-free guidance against the empty
        prompt (glide_jax.model_fns.glide_model_fn); scale 1 is the conditional model alone."""
        return model_fns.glide_model_fn(self.base_model, params, self._kwargs(cond),
                                        self.tokenizer.end_token, guidance_scale, normalize)

    def upsample_model_fn(self, params, cond, low_res):
        return model_fns.glide_model_fn(self.upsample_model, params,
                                        dict(self._kwargs(cond), low_res=low_res),
                                        self.tokenizer.end_token)

    def denoised_fn(self, cond: dict, stage: str):
        if not self.inpaint:
            return None
        return guidance.inpaint_denoised_fn(cond["inpaint_image"], cond["inpaint_mask"])

    def cond_fn(self, params, cond: dict):
        if self.clip_guidance is None:
            return None
        example = {k[len("clip_"):]: v for k, v in cond.items() if k.startswith("clip_")}
        return self.clip_guidance.cond_fn(params["clip"], example)


def _resize(x: np.ndarray, size: int, method: str) -> np.ndarray:
    """[B, H, W, C] float -> [B, size, size, C] with PIL (bicubic images, nearest masks)."""
    from PIL import Image
    if x.shape[1:3] == (size, size):
        return x
    resample = Image.BICUBIC if method == "bicubic" else Image.NEAREST
    out = []
    for image in x:
        channels = [np.asarray(Image.fromarray(image[..., c]).resize((size, size), resample))
                    for c in range(image.shape[-1])]
        out.append(np.stack(channels, axis=-1))
    return np.stack(out).astype(np.float32)
