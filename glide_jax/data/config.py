"""The `data` section of a training config (ml_collections only: importing it pulls in no input
pipeline packages)."""
import ml_collections

from glide_jax.modes import MODE_CHANNELS

MODES = (*MODE_CHANNELS, "text")


def get_data_config():
    """Defaults of the `data` section of a training config."""
    c = ml_collections.ConfigDict()
    c.name = "synthetic"          # synthetic | coco_stuff | ade20k | coco_sketch | diode | image_folder_pairs
    c.builder_config = ""         # image_folder_pairs: label | color | sketch
    c.data_dir = ""               # TFDS data_dir holding the prepared ArrayRecord files
    c.train_split = "train"
    c.val_split = "validation"
    c.mode = "coco"               # one of MODES; selects the condition built from an example
    c.image_size = 64             # target resolution R (64 base, 256 upsampler; smaller for demos)
    c.super_res = 0               # low-res size for upsampler pairs (64), 0 for base models
    c.uncond_p = 0.2              # condition dropout probability (training, base models only)
    c.flip = True                 # random horizontal flip in training
    c.shuffle = True
    c.num_workers = 4             # grain reader threads (0: read in the calling thread)
    c.prefetch_buffer_size = 64   # examples read ahead
    c.l0_smooth_bug = False       # reproduce PITI's all-black L0-smoothing output
    c.synthetic_num_examples = 1024
    c.synthetic_val_examples = 64
    return c
