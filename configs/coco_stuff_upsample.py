"""PITI upsampler (64 -> 256) finetuning on coco_stuff (mode coco), spec 11.2.

    python -m glide_jax.main --config=configs/coco_stuff_upsample.py --workdir=/runs/coco_stuff_up \
        --config.init.torch_checkpoint=/ckpt/upsample.pt

The official recipe adds VGG (x0.004) and adversarial (x0.01) losses from step 100; they are not
implemented yet (train.extra_losses is the seam), so this trains the diffusion loss only.
"""
from glide_jax.train import config_lib


def get_config(arg: str = ""):
    del arg
    c = config_lib.piti_upsample_config("piti-upsample-mask", "coco_stuff", "coco")
    return config_lib.lock(c)
