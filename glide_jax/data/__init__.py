"""Datasets and input pipelines: TFDS builders, PITI conditions, degradations, grain iterators."""
from glide_jax.data.pipeline import (MODES, PitiTransform, create_train_iterator,
                                     create_val_iterator, get_data_config, load_source,
                                     make_dataset)
from glide_jax.data.synthetic import SyntheticShapes
