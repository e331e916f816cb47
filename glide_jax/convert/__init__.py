"""PyTorch checkpoints <-> Flax params for GLIDE and PITI (safe loading, strict key maps, CLI)."""
from glide_jax.convert.checkpoint_io import (CheckpointError, UnsafeCheckpointError,
                                             load_state_dict, save_state_dict)
from glide_jax.convert.convert import (PARTS, ConversionError, DecoderInitReport, flax_to_torch,
                                       glide_to_piti_decoder, is_glide_text_key, torch_to_flax)
from glide_jax.convert.params_io import load_params, save_params

__all__ = [
    "PARTS", "CheckpointError", "ConversionError", "DecoderInitReport", "UnsafeCheckpointError",
    "flax_to_torch", "glide_to_piti_decoder", "is_glide_text_key", "load_params",
    "load_state_dict", "save_params", "save_state_dict", "torch_to_flax",
]
