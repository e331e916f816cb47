"""Model options: the official defaults of glide-text2im and PITI, presets, and validation.

Options are plain dicts with the keys of glide-text2im's `model_and_diffusion_defaults()` plus
`n_vocab`, `learn_sigma`, `dtype`, `family`, `mode` and `use_checkpoint` (and PITI's diffusion
keys, and `encoder_width` / `encoder_layers` / `encoder_heads` for PITI's task encoder: the
official 512 / 8 / 8 by default; smaller only for demos/tests). `use_fp16` and `cache_text_emb`
are accepted for compatibility with official option dicts and do nothing here: `dtype` chooses
the compute precision.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

from glide_jax.models.piti import ENCODER_HEADS, ENCODER_LAYERS, ENCODER_WIDTH, MODE_CHANNELS


def model_and_diffusion_defaults() -> Dict[str, Any]:
    """glide-text2im's base (64x64) defaults, plus this project's keys."""
    return dict(
        image_size=64, num_channels=192, num_res_blocks=3, channel_mult="", num_heads=1,
        num_head_channels=64, num_heads_upsample=-1, attention_resolutions="32,16,8",
        dropout=0.1, text_ctx=128, xf_width=512, xf_layers=16, xf_heads=8, xf_final_ln=True,
        xf_padding=True, diffusion_steps=1000, noise_schedule="squaredcos_cap_v2",
        timestep_respacing="", use_scale_shift_norm=True, resblock_updown=True, use_fp16=False,
        cache_text_emb=False, inpaint=False, super_res=False,
        n_vocab=50257, learn_sigma=True, dtype="float32", family="glide", mode="",
        use_checkpoint=False)


def model_and_diffusion_defaults_upsampler() -> Dict[str, Any]:
    """glide-text2im's upsampler (64 -> 256) defaults."""
    return dict(model_and_diffusion_defaults(), image_size=256, num_res_blocks=2,
                noise_schedule="linear", super_res=True)


def piti_model_and_diffusion_defaults(super_res: int = 0) -> Dict[str, Any]:
    """PITI's script_util defaults (GLIDE base + its diffusion keys); super_res=64 gives the
    upsampler (256x256, 2 res blocks, linear schedule)."""
    options = dict(
        model_and_diffusion_defaults(), family="piti", learn_sigma=True, sigma_small=False,
        use_kl=False, predict_xstart=False, rescale_timesteps=True, rescale_learned_sigmas=True,
        use_fp16=False, super_res=0, mode="",
        # PITI's task encoder: official values by default; smaller only for demos/tests. The
        # CNN's channels are (w/16, w/8, w/4, w/2, w, w) for encoder_width w.
        encoder_width=ENCODER_WIDTH, encoder_layers=ENCODER_LAYERS, encoder_heads=ENCODER_HEADS)
    if super_res:
        options.update(image_size=256, num_res_blocks=2, noise_schedule="linear",
                       super_res=super_res)
    return options


PRESETS: Dict[str, Dict[str, Any]] = {
    "glide-base": model_and_diffusion_defaults(),
    "glide-upsample": model_and_diffusion_defaults_upsampler(),
    "glide-base-inpaint": dict(model_and_diffusion_defaults(), inpaint=True),
    "glide-upsample-inpaint": dict(model_and_diffusion_defaults_upsampler(), inpaint=True),
    "piti-base-mask": dict(piti_model_and_diffusion_defaults(), mode="coco"),
    "piti-upsample-mask": dict(piti_model_and_diffusion_defaults(64), mode="coco"),
    "piti-base-sketch": dict(piti_model_and_diffusion_defaults(), mode="coco-edge"),
    "piti-upsample-sketch": dict(piti_model_and_diffusion_defaults(64), mode="coco-edge"),
    "piti-base-depth": dict(piti_model_and_diffusion_defaults(), mode="depth-normal"),
}

_KNOWN_KEYS = frozenset(piti_model_and_diffusion_defaults()) | frozenset(
    model_and_diffusion_defaults())
_BOOL_KEYS = ("xf_final_ln", "xf_padding", "use_scale_shift_norm", "resblock_updown", "use_fp16",
              "cache_text_emb", "inpaint", "learn_sigma", "use_checkpoint", "sigma_small",
              "use_kl", "predict_xstart", "rescale_timesteps", "rescale_learned_sigmas")
_POSITIVE_INT_KEYS = ("image_size", "num_channels", "num_res_blocks", "text_ctx", "xf_width",
                      "xf_layers", "xf_heads", "n_vocab", "diffusion_steps", "num_heads",
                      "encoder_width", "encoder_layers", "encoder_heads")
_DEFAULT_CHANNEL_MULT = {64: (1, 2, 3, 4), 128: (1, 1, 2, 3, 4), 256: (1, 1, 2, 2, 4, 4)}


def resolve_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """Fill missing keys from the family's defaults (family "piti" when a mode is given) and
    validate. Returns a new dict."""
    family = options.get("family") or ("piti" if options.get("mode") else "glide")
    base = piti_model_and_diffusion_defaults() if family == "piti" else \
        model_and_diffusion_defaults()
    resolved = {**base, **options, "family": family}
    validate_options(resolved)
    return resolved


def _fail(key, value, expected):
    raise ValueError(f"option {key!r}: expected {expected}, got {value!r}")


def channel_mult(options: Dict[str, Any]) -> Tuple[int, ...]:
    """channel_mult as a tuple: "" picks the official per-size default; else "1,2,3,4"."""
    value, size = options["channel_mult"], options["image_size"]
    if value == "" or value is None:
        if size not in _DEFAULT_CHANNEL_MULT:
            _fail("channel_mult", value, f"an explicit value for image_size {size} (defaults "
                  f"exist for {sorted(_DEFAULT_CHANNEL_MULT)})")
        return _DEFAULT_CHANNEL_MULT[size]
    try:
        mult = (tuple(int(v) for v in value.split(",")) if isinstance(value, str)
                else tuple(int(v) for v in value))
    except (TypeError, ValueError):
        _fail("channel_mult", value, 'comma-separated integers such as "1,2,3,4"')
    if 2 ** (len(mult) + 2) != size:
        _fail("channel_mult", value, f"{int(size).bit_length() - 3} levels for image_size {size} "
              "(2 ** (levels + 2) == image_size)")
    return mult


def attention_ds(options: Dict[str, Any]) -> Tuple[int, ...]:
    """Pixel resolutions "32,16,8" -> downsample factors image_size // res."""
    value = options["attention_resolutions"]
    try:
        res = (tuple(int(v) for v in value.split(",") if v.strip()) if isinstance(value, str)
               else tuple(int(v) for v in value))
    except (TypeError, ValueError):
        _fail("attention_resolutions", value, 'comma-separated pixel resolutions such as "32,16,8"')
    return tuple(options["image_size"] // r for r in res)


def n_class(options: Dict[str, Any]) -> int:
    """PITI condition channels for options['mode'] (3 for unknown modes, as the official code)."""
    return MODE_CHANNELS.get(options["mode"], 3)


def validate_options(options: Dict[str, Any]) -> None:
    """Raise ValueError naming the first unknown key or bad value."""
    unknown = sorted(set(options) - _KNOWN_KEYS)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}; known options: {sorted(_KNOWN_KEYS)}")
    for key in _BOOL_KEYS:
        if key in options and not isinstance(options[key], bool):
            _fail(key, options[key], "a bool")
    for key in _POSITIVE_INT_KEYS:
        if key in options and (isinstance(options[key], bool) or not isinstance(options[key], int)
                               or options[key] <= 0):
            _fail(key, options[key], "a positive int")
    if options.get("family") not in ("glide", "piti"):
        _fail("family", options.get("family"), '"glide" or "piti"')
    if options.get("dtype") not in ("float32", "bfloat16"):
        _fail("dtype", options.get("dtype"), '"float32" or "bfloat16"')
    if not 0.0 <= float(options.get("dropout", 0.0)) < 1.0:
        _fail("dropout", options["dropout"], "a probability in [0, 1)")
    nhc = options.get("num_head_channels", -1)
    if not isinstance(nhc, int) or (nhc != -1 and nhc <= 0):
        _fail("num_head_channels", nhc, "-1 or a positive int")
    if "channel_mult" in options and "image_size" in options:
        channel_mult(options)
    if "attention_resolutions" in options and "image_size" in options:
        attention_ds(options)
    if options.get("family") == "piti":
        if options.get("mode") not in MODE_CHANNELS:
            _fail("mode", options.get("mode"), f"one of {sorted(MODE_CHANNELS)} for PITI")
        if options.get("xf_width", 512) != 512:
            _fail("xf_width", options["xf_width"], "512 (unused by PITI's task encoder, whose size is encoder_width)")
        width = options.get("encoder_width", ENCODER_WIDTH)
        if width % 16:
            _fail("encoder_width", width, "a multiple of 16 (the CNN's first layer has width/16 "
                  "channels; the official value is 512)")
        if width % options.get("encoder_heads", ENCODER_HEADS):
            _fail("encoder_heads", options.get("encoder_heads"), "a divisor of encoder_width "
                  f"{width}")
        if isinstance(options.get("super_res"), bool) or not isinstance(
                options.get("super_res", 0), int) or options.get("super_res", 0) < 0:
            _fail("super_res", options.get("super_res"), "0 or the low-res size (e.g. 64) for PITI")
    else:
        if not isinstance(options.get("super_res", False), bool):
            _fail("super_res", options["super_res"], "a bool for GLIDE")
        for key, default in (("encoder_width", ENCODER_WIDTH), ("encoder_layers", ENCODER_LAYERS),
                             ("encoder_heads", ENCODER_HEADS)):
            if options.get(key, default) != default:
                _fail(key, options[key], f"{default} or absent (only PITI has a task encoder)")
        if options.get("xf_width", 512) % options.get("xf_heads", 8):
            _fail("xf_heads", options.get("xf_heads"), "a divisor of xf_width")
        if options.get("xf_width") == 0:
            _fail("xf_width", 0, "a positive int (GLIDE here is always text-conditional)")
