"""GLIDE and PITI networks (linen, NHWC)."""
