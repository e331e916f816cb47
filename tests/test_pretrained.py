"""The shipped demo prior: it loads (sha256-checked), a damaged or missing copy fails naming the
file and the rebuild command, and its samples for a caption show the captioned shapes."""
import shutil

import pytest

from glide_jax import pretrained
from glide_jax.models import count_params, create_model


def test_demo_prior_loads_and_matches_its_provenance():
    params, options = pretrained.load_demo_prior()
    provenance = pretrained.read_provenance()
    assert count_params(params) == provenance["parameters"]
    assert options["family"] == "glide" and options["image_size"] == 32
    create_model(options)  # the options build the network the weights fit
    for key in ("command", "steps", "batch_size", "wall_time_hours", "machine", "final_loss"):
        assert key in provenance, key


def test_damaged_or_missing_prior_names_the_file_and_the_rebuild_command(tmp_path):
    copy = tmp_path / "demo_prior"
    shutil.copytree(pretrained.DEMO_PRIOR_DIR, copy)
    weights = copy / pretrained.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(pretrained.PretrainedError, match="corrupted.*configs/demo_prior.py"):
        pretrained.demo_prior_files(str(copy))
    weights.unlink()
    with pytest.raises(pretrained.PretrainedError, match="missing.*configs/demo_prior.py"):
        pretrained.demo_prior_files(str(copy))


def test_samples_for_a_caption_show_its_shape():
    """8 samples per shape named alone, ancestral 50 steps, guidance 3."""
    params, options = pretrained.load_demo_prior()
    presence = pretrained.caption_fidelity(params, options, per_shape=8)
    print(presence)
    assert presence["recall"] >= RECALL and presence["false_presence"] <= FALSE_PRESENCE


# Set from the shipped prior at this seed and size; ground-truth photos score recall 0.98 /
# false presence 0.0, a model that ignores its caption about 0.5 / 0.5.
RECALL, FALSE_PRESENCE = 0.5, 0.25


def test_demo_prior_recipe_runs(tmp_path):
    """configs/demo_prior.py:tiny: the prior's recipe, a few steps, through main."""
    from glide_jax import saved_params
    from tests.train.conftest import run_main
    result = run_main(["--config=configs/demo_prior.py:tiny", f"--workdir={tmp_path}"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert saved_params.latest_step(str(tmp_path)) == 3
    assert saved_params.read_record(str(tmp_path))["options"]["n_vocab"] == 257
