"""The package's layering: light imports (accelerator images often lack TensorFlow) and
one-way dependencies between the layers (docs/architecture.md)."""
import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "glide_jax"
HEAVY = ("tensorflow", "tensorflow_datasets", "grain", "clu", "tensorboard")

_BUILD_AND_TRACE_A_STEP = """
import sys
import importlib.util
import jax, numpy as np
import glide_jax.models, glide_jax.diffusion, glide_jax.pipelines, glide_jax.convert
from glide_jax import parallel
from glide_jax.train import config_lib, setup, sharding, state, step
spec = importlib.util.spec_from_file_location("cfg", "configs/glide_base.py")
cfg = importlib.util.module_from_spec(spec); spec.loader.exec_module(cfg)
config = config_lib.resolve(cfg.get_config("tiny"))
s = setup.build(config)
opts = s.options
b = config.train.batch_size
batch = {"image": np.zeros((b, 16, 16, 3), np.float32),
         "tokens": np.full((b, opts["text_ctx"]), opts["n_vocab"] - 1, np.int32),
         "mask": np.zeros((b, opts["text_ctx"]), bool)}
# Tracing runs all of the step's Python (lazy imports included); compiling adds nothing to it.
lowered = s.train_step.lower(s.abstract_state, parallel.global_batch(batch, s.mesh))
assert "loss" in lowered.out_info[1]
print(" ".join(sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))))
"""


def test_models_diffusion_pipelines_and_a_traced_train_step_import_no_heavy_package():
    code = f"HEAVY = {HEAVY!r}\n" + _BUILD_AND_TRACE_A_STEP
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=400,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                                 "JAX_PLATFORMS": "cpu", "HOME": str(pathlib.Path.home())})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1:] in ([], [""]), \
        f"imported: {result.stdout.strip()}"


def _imports(path: pathlib.Path) -> set:
    """glide_jax modules a file imports (at any depth of the file)."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n.startswith("glide_jax")}


def _package_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


# layer -> the glide_jax subpackages it must not import
FORBIDDEN = {
    "models": {"diffusion", "data", "train", "pipelines", "convert"},
    "diffusion": {"models", "data", "train", "pipelines", "convert"},
    "data": {"models", "diffusion", "train", "pipelines", "convert"},
    "train": {"pipelines"},
    "pipelines": {"train"},
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_downwards(layer):
    bad = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for name in _imports(path):
            if _package_of(name) in FORBIDDEN[layer]:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)
