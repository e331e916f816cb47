"""Model options: the official defaults of glide-text2im and PITI, presets, and validation.

Options are plain dicts with the keys of glide-text2im's `model_and_diffusion_defaults()` plus
`n_vocab`, `learn_sigma`, `dtype`, `family`, `mode` and `use_checkpoint` (and PITI's diffusion
keys). `use_fp16` and `cache_text_emb` are accepted for compatibility with official option dicts
and do nothing here: `dtype` chooses the compute precision.

PITI's task encoder follows the official derivation (PITI `text2im_model.py`, `Text2ImModel`'s
`self.encoder = Encoder(..., xf_width=xf_width, xf_layers=8, xf_heads=xf_heads)`): width
`xf_width`, heads `xf_heads`, always 8 layers; PITI ignores `xf_layers`, `xf_final_ln`,
`xf_padding`, `text_ctx` and `inpaint`, and so does glide_jax. Its CNN ends at 512 channels and the
decoder's `transformer_proj` is `Linear(512, ...)` whatever the options say, so the official
forward runs only with `xf_width=512`; other widths are refused. `encoder_width`,
`encoder_layers`, `encoder_heads` (default None: the official derivation) override the encoder's
size for small demo models: a departure from the official architecture (the CNN's channels
become w/16 .. w for width w), which no official checkpoint has. `encoder_spatial` (default
False) adds the demo's direct spatial path from the encoder's token grid into the UNet
(`PITIDecoder.spatial_proj_*`); it has no official counterpart, so the PyTorch converter refuses
it by name.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

from glide_jax.models.piti import ENCODER_HEADS, ENCODER_LAYERS, ENCODER_WIDTH
from glide_jax.modes import MODE_CHANNELS


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
        # None: the official encoder (xf_width wide, xf_heads heads, 8 layers); set only for
        # small demo encoders, which depart from the official architecture.
        encoder_width=None, encoder_layers=None, encoder_heads=None,
        # True adds a direct spatial path from the encoder's token grid into the UNet
        # (PITIDecoder.spatial_proj_*): a departure for the CPU demo, not in any official model.
        encoder_spatial=False)
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

# Toy widths (base 16x16, upsampler 64x64) of the official architectures.
_TINY_BASE = dict(image_size=16, num_channels=32, num_res_blocks=1, channel_mult="1,1",
                  num_head_channels=16, attention_resolutions="16,8", dropout=0.0,
                  xf_width=32, xf_layers=1, xf_heads=2, text_ctx=16, n_vocab=257)
_TINY_UPSAMPLE = dict(_TINY_BASE, image_size=64, channel_mult="1,1,1,1", attention_resolutions="8")


def tiny_options(preset: str) -> dict:
    """An official preset (`PRESETS` name) shrunk to toy size: the one set of toy widths that
    configs (`configs/glide_base.py:tiny`), notebooks, tests and CPU benchmarks share.

    PITI models keep their fixed 512-wide task encoder (it is part of the architecture); GLIDE
    models get a 1-layer 32-wide text transformer and the 257-token byte vocabulary
    (GlideTokenizer.tiny()).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    options = dict(PRESETS[preset])
    options.update(_TINY_UPSAMPLE if options["super_res"] else _TINY_BASE)
    if options["family"] == "piti":
        # PITI's task encoder keeps its official size (512 wide, 8 heads, 8 layers).
        options.update(xf_width=512, xf_heads=8)
        if options["super_res"]:
            options["super_res"] = _TINY_BASE["image_size"]
    return options


_KNOWN_KEYS = frozenset(piti_model_and_diffusion_defaults()) | frozenset(
    model_and_diffusion_defaults())
_BOOL_KEYS = ("xf_final_ln", "xf_padding", "use_scale_shift_norm", "resblock_updown", "use_fp16",
              "cache_text_emb", "inpaint", "learn_sigma", "use_checkpoint", "sigma_small",
              "use_kl", "predict_xstart", "rescale_timesteps", "rescale_learned_sigmas",
              "encoder_spatial")
_POSITIVE_INT_KEYS = ("image_size", "num_channels", "num_res_blocks", "text_ctx", "xf_width",
                      "xf_layers", "xf_heads", "n_vocab", "diffusion_steps", "num_heads")
_ENCODER_KEYS = ("encoder_width", "encoder_layers", "encoder_heads")
_GROUPS = 32  # GroupNorm32 everywhere in the UNet
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


def encoder_size(options: Dict[str, Any]) -> Tuple[int, int, int]:
    """PITI task encoder (width, layers, heads): the official (xf_width, 8, xf_heads) unless
    `encoder_width` / `encoder_layers` / `encoder_heads` override them."""
    width = options.get("encoder_width") or options.get("xf_width", ENCODER_WIDTH)
    layers = options.get("encoder_layers") or ENCODER_LAYERS
    heads = options.get("encoder_heads") or options.get("xf_heads", ENCODER_HEADS)
    return int(width), int(layers), int(heads)


def _check_unet_structure(options: Dict[str, Any]) -> None:
    """Channel counts every GroupNorm32 can split and attention heads that divide them, where the
    official constructor would assert or its forward would fail."""
    mc, mult = options["num_channels"], channel_mult(options)
    ds_attn = set(attention_ds(options))
    heads, nhc = options.get("num_heads", 1), options.get("num_head_channels", -1)
    heads_up = options.get("num_heads_upsample", -1)
    heads_up = heads if heads_up == -1 else heads_up
    if not isinstance(heads_up, int) or heads_up <= 0:
        _fail("num_heads_upsample", options.get("num_heads_upsample"), "-1 or a positive int")
    for level, m in enumerate(mult):
        ch = int(m * mc)
        if ch % _GROUPS:
            _fail("num_channels", mc, f"a value whose channel counts num_channels * channel_mult "
                  f"are multiples of {_GROUPS} (GroupNorm32); level {level} has {ch}")
        if 2 ** level not in ds_attn and not (level == len(mult) - 1):
            continue
        if nhc != -1:
            if ch % nhc:
                _fail("num_head_channels", nhc, f"a divisor of the {ch} channels attended at "
                      f"level {level}")
            continue
        for key, value in (("num_heads", heads), ("num_heads_upsample", heads_up)):
            if key == "num_heads_upsample" and 2 ** level not in ds_attn:
                continue  # the middle block uses num_heads only
            if ch % value:
                _fail(key, value, f"a divisor of the {ch} channels attended at level {level} "
                      "(or set num_head_channels)")


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
    if all(k in options for k in ("num_channels", "channel_mult", "image_size",
                                  "attention_resolutions")):
        _check_unet_structure(options)
    if options.get("family") == "piti":
        if options.get("mode") not in MODE_CHANNELS:
            _fail("mode", options.get("mode"), f"one of {sorted(MODE_CHANNELS)} for PITI")
        for key in _ENCODER_KEYS:
            value = options.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value <= 0):
                _fail(key, value, "None (the official derivation) or a positive int")
        if options.get("encoder_width") is None and options.get("xf_width", 512) != 512:
            _fail("xf_width", options["xf_width"], "512 for PITI: the official CNN ends at 512 "
                  "channels and decoder.transformer_proj is Linear(512, ...) (PITI "
                  "text2im_model.py), so other widths build there but fail in its forward; for "
                  "a smaller, non-official encoder set encoder_width")
        width, _, heads = encoder_size(options)
        if width % 16:
            _fail("encoder_width", width, "a multiple of 16 (the CNN's first layer has width/16 "
                  "channels; the official value is 512)")
        if width % heads:
            key = "encoder_heads" if options.get("encoder_heads") else "xf_heads"
            _fail(key, heads, f"a divisor of the task encoder's width {width}")
        if isinstance(options.get("super_res"), bool) or not isinstance(
                options.get("super_res", 0), int) or options.get("super_res", 0) < 0:
            _fail("super_res", options.get("super_res"), "0 or the low-res size (e.g. 64) for PITI")
    else:
        if not isinstance(options.get("super_res", False), bool):
            _fail("super_res", options["super_res"], "a bool for GLIDE")
        for key in _ENCODER_KEYS:
            if options.get(key) is not None:
                _fail(key, options[key], "None or absent (only PITI has a task encoder)")
        if options.get("encoder_spatial"):
            _fail("encoder_spatial", options["encoder_spatial"],
                  "False or absent (only PITI has a task encoder)")
        if options.get("xf_width", 512) % options.get("xf_heads", 8):
            _fail("xf_heads", options.get("xf_heads"), "a divisor of xf_width")
        if options.get("xf_width") == 0:
            _fail("xf_width", 0, "a positive int (GLIDE here is always text-conditional)")
