"""Datasets and input pipelines: TFDS builders (`builders`), PITI conditions (`conditions`),
degradations (`degradation`), the procedural demo data (`synthetic`), mask fidelity
(`fidelity`), grain iterators (`pipeline`) and the config section (`config`).

Submodules are imported where used: `glide_jax.data.pipeline` and the builders need grain and
TensorFlow Datasets; the rest need neither.
"""
