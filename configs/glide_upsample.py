"""GLIDE upsampler (64 -> 256, text-conditional) training or finetuning.

    python -m glide_jax.main --config=configs/glide_upsample.py --workdir=/runs/glide_up \
        --config.init.torch_checkpoint=/ckpt/upsample.pt --config.data.name=coco_stuff
"""
from glide_jax.train import config_lib


def get_config(arg: str = ""):
    del arg
    c = config_lib.glide_config("glide-upsample")
    c.data.image_size = 256
    c.data.super_res = 64
    c.data.uncond_p = 0.0
    c.train.batch_size = 32
    c.sample_grid.num_images = 4
    c.sample_grid.steps = "fast27"
    return config_lib.lock(c)
