"""PITI models: task encoder + GLIDE UNet decoder (filled in by the PITI-models work)."""
import jax.numpy as jnp
import numpy as np


def null_condition(ref):
    """PITI's null condition: a tensor of ones shaped like `ref` ([B,256,256,C] in [-1,1] space).

    Used for condition dropout in training and as the unconditional half of classifier-free
    guidance. Returns numpy for numpy input (host data pipelines) and jax otherwise.
    """
    if isinstance(ref, np.ndarray):
        return np.ones_like(ref)
    return jnp.ones_like(ref)
