"""Model references: a grid of GLIDE and PITI configurations built with the official
constructors, recipe weights, their outputs in float32 and float64, and state-dict layouts of
random valid option dicts (see tools/make_reference.py)."""
from __future__ import annotations

import contextlib
import inspect
import random

import numpy as np

from ref_common import float64_islands_lifted, recipe_input, recipe_tensor, rel_err, sha16

SEED = 12
# PITI's encoder returns 256 grid tokens of 512 channels; the references keep these positions.
XF_OUT_POSITIONS = (0, 1, 15, 16, 100, 128, 200, 255)

GLIDE_BASE = dict(image_size=16, num_channels=64, num_res_blocks=1, channel_mult="1,2",
                  num_heads=1, num_head_channels=16, num_heads_upsample=-1,
                  attention_resolutions="16,8", dropout=0.0, text_ctx=8, xf_width=32,
                  xf_layers=2, xf_heads=2, xf_final_ln=True, xf_padding=True,
                  use_scale_shift_norm=True, resblock_updown=True, use_fp16=False,
                  cache_text_emb=False, inpaint=False, super_res=False)
PITI_BASE = dict(image_size=16, num_channels=64, num_res_blocks=1, channel_mult="1,2",
                 num_heads=1, num_head_channels=16, num_heads_upsample=-1,
                 attention_resolutions="16,8", dropout=0.0, text_ctx=128, xf_width=512,
                 xf_layers=16, xf_heads=8, xf_final_ln=True, xf_padding=True, learn_sigma=True,
                 use_scale_shift_norm=True, resblock_updown=True, use_fp16=False,
                 cache_text_emb=False, inpaint=False, super_res=0, mode="coco")

# (name, delta from the family's base, extra): every option that changes the module structure or
# the arithmetic, one at a time and in the combinations guided-diffusion-style models use.
GLIDE_GRID = [
    ("base", {}, {}),
    ("updown_false", dict(resblock_updown=False), {}),
    ("no_scale_shift", dict(use_scale_shift_norm=False), {}),
    ("updown_false_no_scale_shift", dict(resblock_updown=False, use_scale_shift_norm=False), {}),
    ("heads2", dict(num_heads=2, num_head_channels=-1), {}),
    ("heads2_up4", dict(num_heads=2, num_head_channels=-1, num_heads_upsample=4), {}),
    ("head_channels32_up4", dict(num_head_channels=32, num_heads_upsample=4), {}),
    ("attn_8", dict(attention_resolutions="8"), {}),
    ("attn_16", dict(attention_resolutions="16"), {}),
    ("attn_middle_only", dict(attention_resolutions="4"), {}),
    ("res_blocks2", dict(num_res_blocks=2), {}),
    ("res_blocks3_updown_false", dict(num_res_blocks=3, resblock_updown=False), {}),
    ("mult_2_3", dict(num_channels=32, channel_mult="2,3"), {}),
    ("depth3_32px", dict(image_size=32, num_channels=32, channel_mult="1,2,2",
                         attention_resolutions="16,8", num_res_blocks=2), {}),
    ("default_mult_64px", dict(image_size=64, num_channels=32, channel_mult="",
                               attention_resolutions="32,16,8"), {}),
    ("xf_no_padding", dict(xf_padding=False), {}),
    ("xf_no_final_ln", dict(xf_final_ln=False), {}),
    ("xf_wide", dict(xf_width=64, xf_layers=3, xf_heads=4, text_ctx=12), {}),
    ("xf_heads1", dict(xf_heads=1, xf_layers=1), {}),
    ("superres_x4", dict(super_res=True), dict(low_res=4)),
    ("superres_x2", dict(super_res=True, num_res_blocks=2), dict(low_res=8)),
    ("superres_noninteger", dict(super_res=True), dict(low_res=6)),
    ("superres_updown_false", dict(super_res=True, resblock_updown=False), dict(low_res=4)),
    ("inpaint", dict(inpaint=True), {}),
    ("inpaint_no_scale_shift", dict(inpaint=True, use_scale_shift_norm=False), {}),
    ("superres_inpaint", dict(super_res=True, inpaint=True), dict(low_res=4)),
    ("superres_inpaint_noninteger", dict(super_res=True, inpaint=True), dict(low_res=5)),
]
PITI_GRID = [
    ("coco", {}, {}),
    ("ade20k", dict(mode="ade20k"), {}),
    ("coco_edge", dict(mode="coco-edge"), {}),
    ("flickr_edge", dict(mode="flickr-edge"), {}),
    ("depth_normal", dict(mode="depth-normal"), {}),
    ("xf_heads4", dict(xf_heads=4), {}),
    ("xf_heads16", dict(xf_heads=16), {}),
    # Options the official PITI model accepts and ignores (its Encoder has 8 layers and a final
    # LayerNorm whatever xf_layers / xf_final_ln say; text_ctx, xf_padding, inpaint unused).
    ("ignored_text_options", dict(xf_layers=3, xf_final_ln=False, xf_padding=False, text_ctx=7,
                                  inpaint=True), {}),
    ("fixed_sigma", dict(learn_sigma=False), {}),
    ("updown_false", dict(resblock_updown=False), {}),
    ("no_scale_shift", dict(use_scale_shift_norm=False), {}),
    ("heads2_up4", dict(num_heads=2, num_head_channels=-1, num_heads_upsample=4), {}),
    ("attn_8_res_blocks2", dict(attention_resolutions="8", num_res_blocks=2), {}),
    ("depth3_32px", dict(image_size=32, num_channels=32, channel_mult="1,2,2",
                         attention_resolutions="16,8"), {}),
    ("superres_x4", dict(super_res=4), dict(low_res=4)),
    ("superres_noninteger_edge", dict(super_res=6, mode="coco-edge"), dict(low_res=6)),
    ("superres_updown_false_depth", dict(super_res=4, mode="depth-normal",
                                         resblock_updown=False), dict(low_res=4)),
]
N_VOCAB = 300
TIMESTEPS = np.array([999.0, 37.0], np.float32)
TIMESTEPS_FRACTIONAL = np.array([512.25, 3.5], np.float32)


class StubTokenizer:
    """Stands in for glide_text2im's BPE encoder: Text2ImUNet only reads n_vocab."""

    def __init__(self, n_vocab):
        self.n_vocab = n_vocab


@contextlib.contextmanager
def _stub_tokenizer(n_vocab):
    from glide_text2im import model_creation
    original = model_creation.get_encoder
    model_creation.get_encoder = lambda: StubTokenizer(n_vocab)
    try:
        yield
    finally:
        model_creation.get_encoder = original


def _call_with_known_args(fn, options):
    params = inspect.signature(fn).parameters
    return fn(**{k: v for k, v in options.items() if k in params})


def build_official(family, options, n_vocab=N_VOCAB):
    """The official network for an option dict, float32, eval mode."""
    if family == "glide":
        from glide_text2im import model_creation
        with _stub_tokenizer(n_vocab):
            model = _call_with_known_args(model_creation.create_model, options)
    else:
        from pretrained_diffusion import script_util
        model = _call_with_known_args(script_util.create_model, options)
    return model.eval()


def layout_of(model) -> list:
    """[[key, shape], ...] in state-dict (registration) order."""
    return [[k, list(v.shape)] for k, v in model.state_dict().items()]


INPUT_RECIPES = {"x_t": "normal", "low_res": "uniform", "inpaint_image": "uniform",
                 "inpaint_mask": "binary", "ref": "uniform"}


def _inputs(family, options, extra, name):
    """Recipe inputs (NCHW float32; tokens int64, mask bool, stored as they are)."""
    b, size = 2, options["image_size"]
    key = f"{family}/{name}"
    inputs = {"x_t": recipe_input(SEED, key + "/x_t", (b, 3, size, size), "normal"),
              "timesteps": TIMESTEPS_FRACTIONAL if family == "piti" else TIMESTEPS}
    if extra.get("low_res"):
        low = extra["low_res"]
        inputs["low_res"] = recipe_input(SEED, key + "/low_res", (b, 3, low, low), "uniform")
    if family == "glide":
        ctx = options["text_ctx"]
        rng = np.random.default_rng([SEED, ctx])
        tokens = np.full((b, ctx), N_VOCAB - 1, np.int64)
        mask = np.zeros((b, ctx), bool)
        length = max(1, ctx - 3)  # row 0: a prompt shorter than text_ctx; row 1: the empty prompt
        tokens[0, :length] = rng.integers(0, N_VOCAB - 1, length)
        mask[0, :length] = True
        inputs.update(tokens=tokens, mask=mask)
        if options["inpaint"]:
            inputs["inpaint_image"] = recipe_input(SEED, key + "/inpaint_image",
                                                   (b, 3, size, size), "uniform")
            inputs["inpaint_mask"] = recipe_input(SEED, key + "/inpaint_mask",
                                                  (b, 1, size, size), "binary")
    else:
        # PITI script_util.create_model's mode -> condition channels.
        n_class = {"coco": 3, "ade20k": 3, "depth-normal": 6, "coco-edge": 1,
                   "flickr-edge": 1}[options["mode"]]
        inputs["ref"] = recipe_input(SEED, key + "/ref", (b, n_class, 256, 256), "uniform")
    return inputs


def _forward(model, family, inputs, torch_dtype):
    import torch as th
    t = {k: th.from_numpy(np.asarray(v)) for k, v in inputs.items()}
    for k in ("x_t", "timesteps", "low_res", "inpaint_image", "inpaint_mask", "ref"):
        if k in t:
            t[k] = t[k].to(torch_dtype)
    out = {}
    with th.no_grad():
        if family == "glide":
            kwargs = dict(tokens=t["tokens"], mask=t["mask"])
            for k in ("low_res", "inpaint_image", "inpaint_mask"):
                if k in t:
                    kwargs[k] = t[k]
            out["out"] = model(t["x_t"], t["timesteps"], **kwargs)
            text = model.get_text_emb(t["tokens"], t["mask"])
            out["text_xf_proj"], out["text_xf_out"] = text["xf_proj"], text["xf_out"]
        else:
            kwargs = dict(ref=t["ref"])
            if "low_res" in t:
                kwargs["low_res"] = t["low_res"]
            out["out"] = model(t["x_t"], t["timesteps"], **kwargs)
            enc = model.encoder(t["ref"])
            out["xf_proj"] = enc["xf_proj"]
            out["xf_out_positions"] = enc["xf_out"][:, :, list(XF_OUT_POSITIONS)]
    return {k: v.numpy() for k, v in out.items()}


def _float64_modules(family):
    if family == "glide":
        from glide_text2im import text2im_model, unet
        return (unet, text2im_model)
    from pretrained_diffusion import text2im_model, unet
    return (unet, text2im_model)


def reference_for(family, name, delta, extra):
    """One configuration: (record for the JSON, {array name: array} for the npz)."""
    import torch as th
    options = dict(GLIDE_BASE if family == "glide" else PITI_BASE, **delta)
    model = build_official(family, options)
    state = {k: recipe_tensor(SEED, k, v.shape) for k, v in model.state_dict().items()}
    model.load_state_dict({k: th.from_numpy(v) for k, v in state.items()}, strict=True)
    inputs = _inputs(family, options, extra, name)
    out32 = _forward(model, family, inputs, th.float32)
    model.double()
    unet = model if family == "glide" else model.decoder
    unet.dtype = th.float64
    with float64_islands_lifted(_float64_modules(family)):
        out64 = _forward(model, family, inputs, th.float64)
    jax_options = dict(options)
    if family == "glide":
        jax_options.update(n_vocab=N_VOCAB, learn_sigma=True, family="glide")
    else:
        jax_options.update(family="piti")
    record = {
        "family": family, "name": name, "official_options": options, "options": jax_options,
        "extra": extra, "official_class": type(model).__name__,
        "num_params": int(sum(v.size for v in state.values())),
        "layout": layout_of(model),
        "seed": SEED,
        "inputs": {k: {"shape": list(np.shape(v)), "dtype": str(np.asarray(v).dtype),
                       "recipe": INPUT_RECIPES.get(k, "stored"), "recipe_key": f"{family}/{name}/{k}",
                       "sha16": sha16(np.asarray(v))} for k, v in inputs.items()},
        "timesteps": [float(v) for v in inputs["timesteps"]],
        "official_f32_rel_err_vs_f64": {k: rel_err(out32[k], out64[k]) for k in out64},
        "outputs": {k: list(v.shape) for k, v in out64.items()},
    }
    if family == "piti":
        record["xf_out_positions"] = list(XF_OUT_POSITIONS)
    arrays = {f"{family}/{name}/input/{k}": np.asarray(inputs[k]) for k in ("tokens", "mask")
              if k in inputs}
    for k, v in out64.items():
        # PITI's encoder tokens are stored float32 (rounding 6e-8 relative) to keep files small.
        arrays[f"{family}/{name}/{k}"] = v.astype(np.float32 if k == "xf_out_positions"
                                                  else np.float64)
    return record, arrays


def model_references():
    records, arrays = [], {}
    for family, grid in (("glide", GLIDE_GRID), ("piti", PITI_GRID)):
        for name, delta, extra in grid:
            record, arr = reference_for(family, name, delta, extra)
            worst = max(record["official_f32_rel_err_vs_f64"].values())
            print(f"  {family}/{name}: {record['num_params']:,} params, official f32 worst "
                  f"rel err {worst:.2e}", flush=True)
            records.append(record)
            arrays.update(arr)
    return records, arrays


# --- random valid option dicts (layouts only, built on the meta device) --------------------------

def random_options(rng: random.Random, family: str) -> dict:
    """A random option dict the official constructor accepts and whose forward runs: channel
    counts are multiples of 32 (GroupNorm32) and head counts divide them."""
    levels = rng.choice((2, 3, 4))
    size = 2 ** (levels + 2)
    mult = [rng.choice((1, 2, 3, 4)) for _ in range(levels)]
    if size == 64 and rng.random() < 0.3:
        mult_str = ""
    else:
        mult_str = ",".join(map(str, mult))
    resolutions = [size // 2 ** i for i in range(levels + 1)]
    attn = sorted(rng.sample(resolutions, rng.randint(1, min(3, len(resolutions)))), reverse=True)
    options = dict(
        image_size=size, num_channels=rng.choice((32, 64, 96)),
        num_res_blocks=rng.randint(1, 3), channel_mult=mult_str,
        num_heads=rng.choice((1, 2, 4)), num_head_channels=rng.choice((-1, 16, 32)),
        num_heads_upsample=rng.choice((-1, 1, 2)),
        attention_resolutions=",".join(map(str, attn)), dropout=rng.choice((0.0, 0.1)),
        use_scale_shift_norm=rng.random() < 0.5, resblock_updown=rng.random() < 0.5,
        use_fp16=False, cache_text_emb=False)
    if family == "glide":
        width = rng.choice((32, 64))
        options.update(text_ctx=rng.randint(2, 16), xf_width=width, xf_layers=rng.randint(1, 3),
                       xf_heads=rng.choice((1, 2, 4)), xf_final_ln=rng.random() < 0.5,
                       xf_padding=rng.random() < 0.5, inpaint=rng.random() < 0.4,
                       super_res=rng.random() < 0.4)
    else:
        options.update(text_ctx=128, xf_width=512, xf_layers=rng.choice((8, 16)),
                       xf_heads=rng.choice((2, 4, 8, 16)), xf_final_ln=True, xf_padding=True,
                       learn_sigma=rng.random() < 0.7, inpaint=False,
                       super_res=rng.choice((0, 0, 64)),
                       mode=rng.choice(("coco", "ade20k", "coco-edge", "flickr-edge",
                                        "depth-normal")))
    return options


def random_layouts(count: int, seed: int = 2026):
    import torch as th
    rng = random.Random(seed)
    records = []
    for i in range(count):
        family = "glide" if i % 2 == 0 else "piti"
        options = random_options(rng, family)
        n_vocab = rng.choice((257, 1000, 50257)) if family == "glide" else None
        with th.device("meta"):
            model = build_official(family, options, n_vocab or N_VOCAB)
        jax_options = dict(options, family=family)
        if family == "glide":
            jax_options.update(n_vocab=n_vocab, learn_sigma=True)
        layout = layout_of(model)
        records.append({"family": family, "official_options": options, "options": jax_options,
                        "official_class": type(model).__name__, "layout": layout,
                        "num_params": int(sum(int(np.prod(s)) for _, s in layout))})
    return records
