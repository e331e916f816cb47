"""`config.sample`: what `python -m glide_jax.main --mode=sample` reads (see sample_mode.run)."""
from ml_collections import config_dict


def get_sample_config() -> config_dict.ConfigDict:
    """The keys of `config.sample`; `None` placeholders mean "the recipe's value"."""
    c = config_dict.ConfigDict()
    # What to sample from. PITI: `inputs` = comma-separated globs (or folders) of condition files.
    # GLIDE: `prompts` separated by '|' and/or `prompts_file` (one prompt a line); optional
    # inpainting source `inpaint_image` and `inpaint_mask` (white = keep) applied to every prompt.
    c.inputs = ""
    c.prompts = ""
    c.prompts_file = ""
    c.inpaint_image = ""
    c.inpaint_mask = ""
    c.output_dir = ""                 # "" -> <workdir>/samples
    # Models: converted checkpoint dirs (python -m glide_jax.convert to-flax ...), else the
    # workdir's latest training checkpoint (EMA params) for the stage the workdir trains.
    c.base_checkpoint = ""
    c.upsample_checkpoint = ""
    c.use_ema = True
    c.upsample = True                 # False: write the 64x64 base samples only
    # Recipe and overrides (glide_jax.pipelines.presets): "" picks "piti" for PITI models, "glide" / "glide-inpaint".
    c.recipe = ""
    c.sampler = config_dict.placeholder(str)            # ancestral | ddim | dpm-solver
    c.steps = config_dict.placeholder(str)              # respacing: "250", "100", "fast27", "ddim50"
    c.guidance_scale = config_dict.placeholder(float)
    c.guidance_normalize = config_dict.placeholder(float)  # 0 = plain CFG; (0, 1] blend
    c.temperature = config_dict.placeholder(float)
    c.upsample_sampler = config_dict.placeholder(str)
    c.upsample_steps = config_dict.placeholder(str)
    c.upsample_temperature = config_dict.placeholder(float)
    c.quantization = config_dict.placeholder(str)       # round | truncate | none
    # Reading conditions.
    c.mask_format = "auto"            # auto | color | labels (COCO-Stuff ids, colourised)
    c.sketch_polarity = "auto"        # auto | white_on_black | black_on_white
    # Batching and output.
    c.batch_size = 8                  # global batch (padded to a multiple of the device count)
    c.num_samples = 1                 # samples per input / prompt
    c.seed = 0
    c.grid = True                     # also write grid.png
    c.skip_existing = True            # resume: inputs whose PNGs exist are skipped
    return c
