"""GLIDE base (64x64 text-to-image) training or finetuning on captioned images.

    python -m glide_jax.main --config=configs/glide_base.py --workdir=/runs/glide_base \
        --config.init.torch_checkpoint=/ckpt/base.pt --config.data.name=coco_stuff

`--config=configs/glide_base.py:tiny` is a toy-size model on the procedural shapes (16x16, a
1-layer 32-wide text transformer, byte tokenizer) for smoke tests.
"""
from glide_jax.models.options import tiny_options
from glide_jax.train import config_lib


def get_config(arg: str = ""):
    c = config_lib.glide_config("glide-base")
    c.data.uncond_p = 0.2                 # GLIDE dropped 20% of captions for guidance
    c.train.batch_size = 128
    c.sample_grid.guidance_scale = 3.0
    c.sample_grid.steps = "100"
    if arg == "tiny":
        tiny(c)
    elif arg:
        raise ValueError(f"configs/glide_base.py: unknown argument {arg!r} (expected '' or 'tiny')")
    return config_lib.lock(c)


def tiny(c):
    """Toy sizes on the procedural demo data (fast on a CPU)."""
    c.model.update(tiny_options("glide-base"), dropout=0.1)
    c.data.name = "synthetic"
    c.data.image_size = 16
    c.data.num_workers = 0
    c.data.synthetic_num_examples = 64
    c.data.synthetic_val_examples = 16
    c.train.batch_size = 8
    c.train.num_steps = 10
    c.train.log_every = 5
    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 0
    c.ema_rates = (0.9,)
    c.mesh.fsdp_min_size = 1024
    c.checkpoint.every = 5
    c.checkpoint.async_save = True
    c.eval.num_batches = 1
    c.sample_grid.every = 0
    c.sample_grid.num_images = 8
    c.sample_grid.steps = "4"
    c.sample_grid.guidance_scale = 2.0
