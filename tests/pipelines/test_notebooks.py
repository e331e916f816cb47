"""Every notebook runs top to bottom in tiny mode (random tiny models, a few steps, CPU)."""
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[2] / "notebooks"


# finetune_demo runs the demo's main job and --mode=sample (75 s on CI's cores), which
# tests/train/test_piti_stages.py and tests/pipelines/test_sample_mode.py already cover: -m slow.
@pytest.mark.parametrize("name", ["piti_mask_sketch_to_image", "glide_text2im",
                                  pytest.param("finetune_demo", marks=pytest.mark.slow)])
def test_notebook_runs_in_tiny_mode(name, monkeypatch):
    monkeypatch.setenv("GLIDE_JAX_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("XLA_FLAGS", "")  # one CPU device: no padding of the tiny batches
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
