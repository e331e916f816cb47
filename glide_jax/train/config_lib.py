"""Training configs: the shared defaults, PITI stages and phases, and validation.

A config file in `configs/` builds on `base_config(preset)` and returns a locked ConfigDict, so an
override of a key that does not exist (`--config.optim.lr=...`) fails before anything runs.

Stages are named partial configs in `config.stages` (PITI's recipe: `stage1`, `stage1_cont`,
`stage2`); `config.stage` picks one, `config.phases` runs several in sequence (the demo).
`resolve(config, name, overrides)` gives the flat config one stage trains with: the stage's
values over the base, then the command-line overrides again (the command line wins).
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Mapping, Optional

import ml_collections

from glide_jax.data.config import get_data_config
from glide_jax.models import options as options_lib
from glide_jax.sample_config import get_sample_config

TRAINABLE = ("all", "encoder", "decoder")
OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("constant", "cosine", "linear")
SCHEDULE_SAMPLERS = ("uniform", "loss-second-moment")
NAN_POLICIES = ("stop", "skip")
GRID_SAMPLERS = ("ancestral", "ddim")
TORCH_PARTS = ("full", "encoder", "decoder", "glide-decoder")  # as `glide_jax.convert to-flax --part`
WORKDIR_PARTS = ("all", "encoder", "decoder")
# Extra per-sample loss terms (the upsampler's perceptual and adversarial losses) plug in here by
# name: glide_jax.train.step.EXTRA_LOSSES. None is implemented yet.
_STAGE_ALIASES = {"1": "stage1", "1c": "stage1_cont", "1-cont": "stage1_cont",
                  "1_cont": "stage1_cont", "2": "stage2"}
_DATA_MODES = {"coco": "coco", "ade20k": "ade20k", "coco-edge": "coco-edge",
               "flickr-edge": "flickr-edge", "depth-normal": "depth-normal"}


class ConfigError(ValueError):
    """A config key is unknown or contradicts another; the message names the key(s)."""


def base_config(preset: str) -> ml_collections.ConfigDict:
    """Defaults shared by every training config (unlocked; the config file locks it)."""
    if preset not in options_lib.PRESETS:
        raise ConfigError(f"model_preset {preset!r} is not one of {sorted(options_lib.PRESETS)}")
    c = ml_collections.ConfigDict()
    c.model_preset = preset
    # Every option of the preset, so that unknown option overrides fail (see models.options).
    c.model = ml_collections.ConfigDict(dict(options_lib.PRESETS[preset]))
    c.data = get_data_config()
    c.seed = 0

    c.train = ml_collections.ConfigDict()
    c.train.batch_size = 128           # global batch, split over processes and devices
    c.train.microbatches = 1           # gradient accumulation: a scan over batch_size/microbatches
    c.train.num_steps = 100_000        # the phase ends after this many optimizer steps
    c.train.trainable = "all"          # all | encoder (PITI stage 1) | decoder
    c.train.schedule_sampler = "uniform"
    c.train.nan_policy = "stop"        # stop | skip (a non-finite loss or grad skips the update)
    c.train.extra_losses = ()          # names in glide_jax.train.step.EXTRA_LOSSES
    # P2 weighting of the mse term, 1 / (p2_k + SNR(t))^p2_gamma (Choi et al. 2022); 0: off, as
    # GLIDE and PITI train.
    c.train.p2_gamma = 0.0
    c.train.p2_k = 1.0
    c.train.log_every = 100
    c.train.profile = False            # clu Profile action for a few steps after the first log

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "adam"              # adam | adamw (decoupled weight decay)
    c.optim.learning_rate = 1e-4
    c.optim.b1 = 0.9
    c.optim.b2 = 0.999
    c.optim.eps = 1e-8
    c.optim.weight_decay = 0.0
    c.optim.schedule = "constant"      # constant | cosine | linear (after warmup)
    c.optim.warmup_steps = 0
    c.optim.decay_steps = 0            # length of the cosine/linear decay
    c.optim.end_lr_factor = 0.0        # final lr = learning_rate * end_lr_factor
    c.optim.grad_clip_norm = 0.0       # 0 = no clipping (PITI)

    c.ema_rates = (0.9999,)

    c.mesh = ml_collections.ConfigDict()
    c.mesh.data = -1                   # -1: all devices not used by fsdp
    c.mesh.fsdp = 1
    c.mesh.fsdp_min_size = 2 ** 18     # params with fewer elements are replicated

    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.every = 5000
    c.checkpoint.keep = 3              # latest K (plus best K by best_metric when set)
    c.checkpoint.best_metric = ""      # e.g. "eval/loss" (needs eval.every > 0)
    c.checkpoint.best_mode = "min"
    c.checkpoint.async_save = True

    c.init = ml_collections.ConfigDict()
    c.init.torch_checkpoint = ""       # official .pt (GLIDE base.pt, PITI base_mask.pt, stage-1 ema)
    c.init.torch_part = ""             # full | encoder | decoder (PITI parts) | glide-decoder
    c.init.from_scratch = False        # PITI: allow a decoder that starts from random weights
    c.init.from_workdir = ""           # another training workdir (its latest checkpoint)
    c.init.from_workdir_params = "ema"  # ema (first EMA rate) | params
    c.init.from_workdir_part = "all"   # all | encoder | decoder

    c.eval = ml_collections.ConfigDict()
    c.eval.every = 0                   # 0: no periodic validation losses during training
    c.eval.num_batches = 8
    c.eval.batch_size = 0              # 0: train.batch_size
    # Mask fidelity (glide_jax.data.fidelity; the synthetic demo domain): samples for this many
    # validation masks with the grid's sampler, steps and guidance, their mIoU beside the
    # ceiling (ground truth) and floors (null condition; ground truth vs other masks), after the
    # last phase and in --mode=eval. 0: off.
    c.eval.fidelity_examples = 0

    c.sample_grid = ml_collections.ConfigDict()
    c.sample_grid.every = 20_000       # 0: never; a grid is also written when a phase ends
    c.sample_grid.num_images = 8       # 0: no grids
    c.sample_grid.steps = "50"         # respacing of the sampling chain
    c.sample_grid.sampler = "ancestral"  # ancestral (PITI's p_sample_loop) | ddim (eta 0)
    c.sample_grid.guidance_scale = 1.0  # PITI's sample_c
    c.sample_grid.use_ema = True
    c.sample_grid.fidelity = False     # log the grid samples' mask mIoU (demo domain: synthetic)

    c.sample = get_sample_config()
    c.stage = ""
    c.stages = ml_collections.ConfigDict()
    c.phases = ()
    return c


def piti_stages(base_steps: int = 200_000, cont_steps: int = 60_000,
                stage2_steps: int = 1_000_000) -> ml_collections.ConfigDict:
    """PITI's three base-model stages (PITI's *_finetune_base.sh) as partial configs."""
    return ml_collections.ConfigDict({
        "stage1": {"train": {"trainable": "encoder", "num_steps": base_steps},
                   "optim": {"learning_rate": 3.5e-5}, "data": {"uncond_p": 0.0}},
        "stage1_cont": {"train": {"trainable": "encoder", "num_steps": cont_steps},
                        "optim": {"learning_rate": 2e-5}, "data": {"uncond_p": 0.2},
                        "sample_grid": {"guidance_scale": 1.5}},
        "stage2": {"train": {"trainable": "all", "num_steps": stage2_steps},
                   "optim": {"learning_rate": 3.5e-5}, "data": {"uncond_p": 0.2},
                   "sample_grid": {"guidance_scale": 1.5}},
    })


def stage_name(config, name: Optional[str] = None) -> str:
    """Canonical stage name ("2" -> "stage2"); "" when the config has no stage."""
    name = config.stage if name is None else name
    if not name:
        return ""
    if name not in config.stages and _STAGE_ALIASES.get(name, "") in config.stages:
        name = _STAGE_ALIASES[name]
    if name not in config.stages:
        raise ConfigError(f"stage {name!r} is not one of config.stages {sorted(config.stages)}")
    return name


def phase_names(config) -> list:
    """The stages one invocation runs: config.phases, else [config.stage] (possibly "")."""
    if config.phases:
        return [stage_name(config, p) for p in config.phases]
    return [stage_name(config)]


def _merge(target: ml_collections.ConfigDict, partial: Mapping, where: str) -> None:
    for key, value in partial.items():
        path = f"{where}.{key}" if where else key
        if key not in target:
            raise ConfigError(f"{path}: no such config key (set by a stage)")
        if isinstance(target[key], ml_collections.ConfigDict):
            _merge(target[key], value, path)
        else:
            target[key] = value


def _set_dotted(config, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    node = config
    for p in parents:
        node = node[p]
    node[leaf] = value


def resolve(config, name: str = "", overrides: Optional[Mapping[str, Any]] = None):
    """The config stage `name` trains with (a locked copy): base <- stage <- command line."""
    name = stage_name(config, name) if name else ""
    out = copy.deepcopy(config)
    out.unlock()
    if name:
        _merge(out, out.stages[name].to_dict(), "")
        out.stage = name
    for dotted, value in (overrides or {}).items():
        if dotted.split(".")[0] not in ("stages", "phases", "stage"):
            _set_dotted(out, dotted, value)
    out.phases = ()
    out.lock()
    validate_config(out)
    return out


def model_options(config) -> Dict[str, Any]:
    """The model option dict (resolved with the family defaults)."""
    return options_lib.resolve_options(config.model.to_dict())


def _need(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _validate_model_and_data(config, opts) -> None:
    data = config.data
    piti = opts["family"] == "piti"
    _need(data.image_size == opts["image_size"], "data.image_size",
          f"{data.image_size} differs from model.image_size {opts['image_size']}")
    if piti:
        _need(data.mode == _DATA_MODES.get(opts["mode"], opts["mode"]), "data.mode",
              f"{data.mode!r} does not match model.mode {opts['mode']!r}")
        _need(data.super_res == int(opts["super_res"]), "data.super_res",
              f"{data.super_res} differs from model.super_res {opts['super_res']}")
    else:
        _need(data.mode == "text", "data.mode", f"GLIDE models train on text, got {data.mode!r}")
        low = opts["image_size"] // 4 if opts["super_res"] else 0
        _need(data.super_res == low, "data.super_res",
              f"{data.super_res}, but the GLIDE model expects {low} (model.super_res "
              f"{opts['super_res']})")
        _need(config.train.trainable == "all", "train.trainable",
              f"{config.train.trainable!r} exists only for PITI (encoder/decoder) models")
    if data.super_res:
        _need(data.uncond_p == 0.0, "data.uncond_p",
              f"{data.uncond_p}: upsampler data never drops the condition (set it to 0)")


def _validate_train(config) -> None:
    t, o = config.train, config.optim
    _need(t.trainable in TRAINABLE, "train.trainable", f"{t.trainable!r} not in {TRAINABLE}")
    _need(t.schedule_sampler in SCHEDULE_SAMPLERS, "train.schedule_sampler",
          f"{t.schedule_sampler!r} not in {SCHEDULE_SAMPLERS}")
    _need(t.nan_policy in NAN_POLICIES, "train.nan_policy",
          f"{t.nan_policy!r} not in {NAN_POLICIES}")
    _need(t.batch_size > 0 and t.num_steps >= 0, "train.batch_size",
          "batch_size must be positive and num_steps non-negative")
    _need(t.microbatches >= 1 and t.batch_size % t.microbatches == 0, "train.microbatches",
          f"{t.microbatches} must divide train.batch_size {t.batch_size}")
    _need(t.p2_gamma >= 0 and t.p2_k > 0, "train.p2_gamma",
          f"p2_gamma {t.p2_gamma} must be >= 0 and p2_k {t.p2_k} > 0")
    from glide_jax.train.step import EXTRA_LOSSES
    for name in t.extra_losses:
        _need(name in EXTRA_LOSSES, "train.extra_losses",
              f"{name!r} is not implemented (available: {sorted(EXTRA_LOSSES)})")
    _need(o.name in OPTIMIZERS, "optim.name", f"{o.name!r} not in {OPTIMIZERS}")
    _need(o.schedule in LR_SCHEDULES, "optim.schedule", f"{o.schedule!r} not in {LR_SCHEDULES}")
    _need(o.learning_rate > 0, "optim.learning_rate", f"must be positive, got {o.learning_rate}")
    _need(o.schedule == "constant" or o.decay_steps > 0, "optim.decay_steps",
          f"must be positive for optim.schedule={o.schedule!r}")
    _need(o.name == "adamw" or o.weight_decay == 0.0, "optim.weight_decay",
          f"{o.weight_decay} needs optim.name='adamw' (Adam has no decoupled weight decay)")
    _need(o.grad_clip_norm >= 0, "optim.grad_clip_norm", "must be >= 0 (0 disables clipping)")
    _need(len(config.ema_rates) >= 1 and all(0.0 <= r < 1.0 for r in config.ema_rates),
          "ema_rates", f"need at least one rate in [0, 1), got {tuple(config.ema_rates)}")
    _need(config.mesh.fsdp >= 1 and (config.mesh.data == -1 or config.mesh.data >= 1),
          "mesh", f"data={config.mesh.data} fsdp={config.mesh.fsdp}: need fsdp >= 1 and "
          "data >= 1 or -1")


def _validate_init_and_checkpoint(config, opts) -> None:
    i, ck = config.init, config.checkpoint
    _need(not i.torch_checkpoint or i.torch_part, "init.torch_part",
          f"init.torch_checkpoint={i.torch_checkpoint!r} needs init.torch_part (which part of "
          f"the model the file initialises: one of {TORCH_PARTS})")
    if i.torch_part:
        _need(i.torch_part in TORCH_PARTS, "init.torch_part",
              f"{i.torch_part!r} not in {TORCH_PARTS}")
        _need(i.torch_part == "full" or opts["family"] == "piti", "init.torch_part",
              f"{i.torch_part!r} exists only for PITI models (GLIDE: 'full')")
    if opts["family"] == "piti":
        decoder_init = ((i.torch_checkpoint and i.torch_part in ("full", "decoder",
                                                                 "glide-decoder"))
                        or (i.from_workdir and i.from_workdir_part in ("all", "decoder")))
        _need(decoder_init or i.from_scratch, "init",
              "the PITI decoder would start from random weights: set init.torch_checkpoint to "
              "GLIDE's base.pt / upsample.pt with init.torch_part='glide-decoder' (PITI's "
              "recipe), or init.from_workdir to a previous stage, or init.from_scratch=True to "
              "train it from nothing on purpose")
    _need(i.from_workdir_params in ("ema", "params"), "init.from_workdir_params",
          f"{i.from_workdir_params!r} not in ('ema', 'params')")
    _need(i.from_workdir_part in WORKDIR_PARTS, "init.from_workdir_part",
          f"{i.from_workdir_part!r} not in {WORKDIR_PARTS}")
    _need(i.from_workdir_part == "all" or opts["family"] == "piti", "init.from_workdir_part",
          "encoder/decoder parts exist only for PITI models")
    fidelity = config.sample_grid.fidelity or config.eval.fidelity_examples > 0
    _need(not fidelity or (config.data.name == "synthetic" and config.data.mode == "coco"),
          "sample_grid.fidelity / eval.fidelity_examples",
          "mask fidelity is defined for the synthetic demo domain's colour masks (data.name "
          f"'synthetic', data.mode 'coco'), got {config.data.name!r} / {config.data.mode!r}")
    _need(config.eval.fidelity_examples >= 0, "eval.fidelity_examples", "must be >= 0")
    _need(config.sample_grid.sampler in GRID_SAMPLERS, "sample_grid.sampler",
          f"{config.sample_grid.sampler!r} not in {GRID_SAMPLERS}")
    _need(ck.every > 0 and ck.keep >= 1, "checkpoint.every", "checkpoint.every and "
          "checkpoint.keep must be positive")
    _need(ck.best_mode in ("min", "max"), "checkpoint.best_mode", f"{ck.best_mode!r}")
    _need(not ck.best_metric or config.eval.every > 0, "checkpoint.best_metric",
          f"{ck.best_metric!r} needs periodic evaluation (eval.every > 0)")
    _need(not ck.best_metric or ck.best_metric.startswith("eval/"), "checkpoint.best_metric",
          f"{ck.best_metric!r}: only eval/ metrics are available at save time")


def validate_config(config) -> None:
    """Raise ConfigError naming the key of the first contradiction or bad value."""
    try:
        opts = model_options(config)
    except ValueError as e:
        raise ConfigError(f"model: {e}") from e
    _validate_model_and_data(config, opts)
    _validate_train(config)
    _validate_init_and_checkpoint(config, opts)
    if config.phases:
        for name in config.phases:
            stage_name(config, name)
    elif config.stage:
        stage_name(config)


def lock(config) -> ml_collections.ConfigDict:
    """Lock a config (unknown overrides fail) and return it."""
    config.lock()
    return config


__all__ = ["ConfigError", "base_config", "glide_config", "piti_stages", "piti_base_config",
           "piti_upsample_config", "resolve", "validate_config", "model_options", "phase_names",
           "stage_name", "lock"]


def glide_config(preset: str) -> ml_collections.ConfigDict:
    """GLIDE (text-conditional) finetuning on captioned images: AdamW lr 1e-5 (weight decay
    0.01, 1000 warmup steps, clipping at 1), uniform t, the decoder from the official .pt
    (init.torch_part "full"). The config file sets batch size and image sizes."""
    c = base_config(preset)
    c.data.name = "coco_stuff"
    c.data.mode = "text"
    c.train.num_steps = 200_000
    c.train.schedule_sampler = "uniform"
    c.optim.name = "adamw"
    c.optim.learning_rate = 1e-5
    c.optim.weight_decay = 0.01
    c.optim.warmup_steps = 1000
    c.optim.grad_clip_norm = 1.0
    c.init.torch_part = "full"
    return c


def piti_base_config(preset: str, dataset: str, mode: str, arg: str = "",
                     decoder_init: str = "", sample_c: Optional[dict] = None):
    """A PITI base-model config (64x64) on `dataset` with the three stages of PITI's mask_finetune_base.sh.

    arg: the stage ("stage1", "stage1_cont", "stage2" or "1", "1c", "2"); "" leaves the choice
    to --config.stage. The decoder starts from GLIDE's base.pt (`decoder_init`, e.g.
    /ckpt/base.pt); stage1_cont/stage2 start from the previous stage's workdir, which you pass
    with --config.init.from_workdir (its EMA params, as PITI's scripts do).
    """
    c = base_config(preset)
    c.model.mode = mode
    c.data.name = dataset
    c.data.mode = mode
    c.train.batch_size = 128
    c.train.schedule_sampler = "loss-second-moment"
    c.train.log_every = 200
    c.optim.learning_rate = 3.5e-5
    c.ema_rates = (0.9999,)
    c.checkpoint.every = 20_000
    c.sample_grid.every = 20_000
    c.sample_grid.steps = "100"
    c.init.torch_checkpoint = decoder_init
    c.init.torch_part = "glide-decoder"
    c.stages = piti_stages()
    for stage, scale in (sample_c or {}).items():
        c.stages[stage].sample_grid = {"guidance_scale": scale}
    if arg:
        c.stage = stage_name(c, arg)
    return c


def piti_upsample_config(preset: str, dataset: str, mode: str, decoder_init: str = ""):
    """PITI's upsampler finetuning (64 -> 256, PITI's mask_finetune_upsample.sh): batch 4, lr 1e-5, uniform t, no
    condition dropout; the decoder from GLIDE's upsample.pt. Its VGG and adversarial losses are
    not implemented yet (train.extra_losses)."""
    c = base_config(preset)
    c.model.mode = mode
    c.data.name = dataset
    c.data.mode = mode
    c.data.image_size = 256
    c.data.super_res = 64
    c.data.uncond_p = 0.0
    c.train.batch_size = 4
    c.train.num_steps = 1_000_000
    c.train.schedule_sampler = "uniform"
    c.optim.learning_rate = 1e-5
    c.checkpoint.every = 20_000
    c.sample_grid.every = 20_000
    c.sample_grid.num_images = 4
    c.sample_grid.steps = "fast27"
    c.init.torch_checkpoint = decoder_init
    c.init.torch_part = "glide-decoder"
    return c
