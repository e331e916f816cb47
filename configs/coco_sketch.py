"""PITI base model (64x64) on coco_sketch (mode coco-edge), stage by stage (PITI's mask_finetune_base.sh / sketch_finetune_base.sh).

    python -m glide_jax.main --config=configs/coco_sketch.py:stage1 --workdir=/runs/coco_sketch_s1 \
        --config.init.torch_checkpoint=/ckpt/base.pt
    python -m glide_jax.main --config=configs/coco_sketch.py:stage1_cont --workdir=/runs/coco_sketch_s1c \
        --config.init.torch_checkpoint=/ckpt/base.pt --config.init.from_workdir=/runs/coco_sketch_s1
    python -m glide_jax.main --config=configs/coco_sketch.py:stage2 --workdir=/runs/coco_sketch_s2 \
        --config.init.torch_checkpoint=/ckpt/base.pt --config.init.from_workdir=/runs/coco_sketch_s1c
"""
from glide_jax.train import config_lib


def get_config(arg: str = "stage1"):
    c = config_lib.piti_base_config("piti-base-sketch", "coco_sketch", "coco-edge", arg, decoder_init="",
                                    sample_c={"stage1": 1, "stage1_cont": 1, "stage2": 2.5})
    return config_lib.lock(c)
