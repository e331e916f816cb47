"""glide_jax: GLIDE and PITI pixel-space diffusion in JAX/Flax (NHWC, linen)."""
__version__ = "0.1.0"
