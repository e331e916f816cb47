"""Shared helpers for the training tests: tiny GLIDE configs and a persistent compile cache."""
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CACHE_DIR = os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", "/tmp/glide_jax_test_jax_cache")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402

jax.config.update("jax_compilation_cache_dir", CACHE_DIR)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def one_device():
    """In-process training tests run on one of the 8 virtual devices: sharding is tested where
    it is the point (test_step, the two-process run), and one device compiles and runs faster."""
    return jax.devices()[:1]


def load_config(name: str, arg: str = ""):
    """get_config(arg) of configs/<name>.py, unlocked for the test to edit."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"_cfg_{name}", ROOT / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()


def tiny_config(**train):
    """configs/glide_base.py:tiny (unlocked copy), with train.<k> = v overrides, no grids."""
    config = load_config("glide_base", "tiny")
    config.sample_grid.num_images = 0
    config.checkpoint.async_save = False
    for key, value in train.items():
        config.train[key] = value
    return config


def run_main(args, timeout=540, **kwargs):
    """Runs `python -m glide_jax.main ARGS` in a subprocess (1 CPU device); returns the result.
    On timeout the child is killed (subprocess.run) and TimeoutExpired fails the test."""
    import subprocess
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
               JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "glide_jax.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture
def tiny():
    return tiny_config()
