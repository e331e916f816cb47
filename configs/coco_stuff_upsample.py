"""PITI upsampler (64 -> 256) finetuning on coco_stuff (mode coco), as PITI's mask_finetune_upsample.sh / sketch_finetune_upsample.sh.

    python -m glide_jax.main --config=configs/coco_stuff_upsample.py --workdir=/runs/coco_stuff_up \
        --config.init.torch_checkpoint=/ckpt/upsample.pt

The official recipe adds VGG (x0.004) and adversarial (x0.01) losses from step 100; they are not
implemented yet (train.extra_losses is the seam), so this trains the diffusion loss only.

`data.l0_smooth_bug` (default False) reproduces PITI's degradation bug: its L0-smoothing step
returns an all-black image, so about 20% of the official upsampler's inputs are black.
"""
from glide_jax.train import config_lib


def get_config(arg: str = ""):
    del arg
    c = config_lib.piti_upsample_config("piti-upsample-mask", "coco_stuff", "coco")
    return config_lib.lock(c)
