"""PITI upsampler (64 -> 256) finetuning on ade20k (mode ade20k), spec 11.2.

    python -m glide_jax.main --config=configs/ade20k_upsample.py --workdir=/runs/ade20k_up \
        --config.init.torch_checkpoint=/ckpt/upsample.pt

The official recipe adds VGG (x0.004) and adversarial (x0.01) losses from step 100; they are not
implemented yet (train.extra_losses is the seam), so this trains the diffusion loss only.
"""
from glide_jax.train import config_lib


def get_config(arg: str = ""):
    del arg
    c = config_lib.piti_upsample_config("piti-upsample-mask", "ade20k", "ade20k")
    return config_lib.lock(c)
