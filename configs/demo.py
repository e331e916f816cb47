"""The built-in demo: PITI mask-to-image on procedural shapes, on a CPU in minutes.

    python -m glide_jax.main --config=configs/demo.py --workdir=/tmp/demo

Three phases run in sequence (each in WORKDIR/<phase>, each resuming from its own checkpoints and
starting from the previous phase's final EMA params): `pretrain` (unconditional: every condition
is the null condition, all weights train), `stage1` (mask -> image, encoder only, decoder frozen)
and `stage2` (everything). Grids of condition | sample | ground truth land in WORKDIR/*/samples/.
The UNet is tiny (32x32 output, 32 channels) and so is PITI's task encoder (encoder_width 64,
2 layers, 4 heads instead of the official 512 / 8 / 8): about 10 minutes on a 2-core CPU, most of
it in stage 2, after which the samples roughly follow the masks (sky above, grass below, blobs of
the shapes' colours near the shapes).
"""
from glide_jax.models import options as options_lib
from glide_jax.train import config_lib

PHASE_STEPS = {"pretrain": 100, "stage1": 100, "stage2": 600}
# A small task encoder for CPU demos (the official 512 wide x 8 layers would dominate the step
# time); applied only where the models package has these options.
SMALL_ENCODER = dict(encoder_width=64, encoder_layers=2, encoder_heads=4)


def get_config(arg: str = ""):
    c = config_lib.base_config("piti-base-mask")
    c.model.update(image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2,2",
                   attention_resolutions="8", num_head_channels=32, dropout=0.0,
                   noise_schedule="linear", diffusion_steps=1000)
    if set(SMALL_ENCODER) <= set(options_lib.piti_model_and_diffusion_defaults()):
        c.model.update(SMALL_ENCODER)
    c.data.name = "synthetic"
    c.data.mode = "coco"
    c.data.image_size = 32
    c.data.num_workers = 2
    c.data.prefetch_buffer_size = 16
    c.data.synthetic_num_examples = 512
    c.data.synthetic_val_examples = 16

    c.train.batch_size = 8
    c.train.log_every = 50
    c.train.schedule_sampler = "uniform"
    c.optim.learning_rate = 1.5e-3
    c.optim.warmup_steps = 20
    c.optim.grad_clip_norm = 1.0
    c.ema_rates = (0.99,)
    c.init.from_workdir_params = "ema"
    c.mesh.fsdp_min_size = 2 ** 16

    c.checkpoint.every = 200
    c.checkpoint.keep = 2
    c.eval.num_batches = 2
    c.sample_grid.every = 0
    c.sample_grid.num_images = 4
    c.sample_grid.steps = "50"
    c.sample_grid.guidance_scale = 1.0
    c.sample_grid.use_ema = True

    c.stages.pretrain = dict(train=dict(trainable="all", num_steps=PHASE_STEPS["pretrain"]),
                             data=dict(uncond_p=1.0))
    c.stages.stage1 = dict(train=dict(trainable="encoder", num_steps=PHASE_STEPS["stage1"]),
                           data=dict(uncond_p=0.0))
    c.stages.stage2 = dict(train=dict(trainable="all", num_steps=PHASE_STEPS["stage2"]),
                           data=dict(uncond_p=0.2), sample_grid=dict(guidance_scale=2.0))
    c.phases = ("pretrain", "stage1", "stage2")
    if arg:
        c.phases = tuple(arg.split(","))
    return config_lib.lock(c)
