"""PITI base model (64x64) on ade20k (mode ade20k), stage by stage (PITI's mask_finetune_base.sh / sketch_finetune_base.sh).

    python -m glide_jax.main --config=configs/ade20k.py:stage1 --workdir=/runs/ade20k_s1 \
        --config.init.torch_checkpoint=/ckpt/base.pt
    python -m glide_jax.main --config=configs/ade20k.py:stage1_cont --workdir=/runs/ade20k_s1c \
        --config.init.torch_checkpoint=/ckpt/base.pt --config.init.from_workdir=/runs/ade20k_s1
    python -m glide_jax.main --config=configs/ade20k.py:stage2 --workdir=/runs/ade20k_s2 \
        --config.init.torch_checkpoint=/ckpt/base.pt --config.init.from_workdir=/runs/ade20k_s1c
"""
from glide_jax.train import config_lib


def get_config(arg: str = "stage1"):
    c = config_lib.piti_base_config("piti-base-mask", "ade20k", "ade20k", arg, decoder_init="",
                                    sample_c={"stage1": 1, "stage1_cont": 1.5, "stage2": 1.5})
    return config_lib.lock(c)
