"""GLIDE upsampler (64 -> 256, text-conditional) training or finetuning.

    python -m glide_jax.main --config=configs/glide_upsample.py --workdir=/runs/glide_up \
        --config.init.torch_checkpoint=/ckpt/upsample.pt --config.data.name=coco_stuff
"""
from glide_jax.train import config_lib


def get_config(arg: str = ""):
    del arg
    c = config_lib.base_config("glide-upsample")
    c.data.name = "coco_stuff"
    c.data.mode = "text"
    c.data.image_size = 256
    c.data.super_res = 64
    c.data.uncond_p = 0.0
    c.train.batch_size = 32
    c.train.num_steps = 200_000
    c.train.schedule_sampler = "uniform"
    c.optim.name = "adamw"
    c.optim.learning_rate = 1e-5
    c.optim.weight_decay = 0.01
    c.optim.warmup_steps = 1000
    c.optim.grad_clip_norm = 1.0
    c.init.torch_part = "full"
    c.sample_grid.num_images = 4
    c.sample_grid.steps = "fast27"
    return config_lib.lock(c)
