"""`--mode=sample`: files named after the inputs, a grid, and resuming skips finished inputs."""
import os

import ml_collections
from PIL import Image

from glide_jax.convert import save_params
from glide_jax.pipelines import get_sample_config, sample_mode
from glide_jax.pipelines.tiny import tiny_model


def test_sample_mode_writes_and_resumes(tmp_path, data_dir):
    params, options = tiny_model("piti-base-mask")
    save_params(tmp_path / "base", params, options)
    config = ml_collections.ConfigDict({"sample": get_sample_config()})
    masks = data_dir / "piti_samples" / "test_imgs_mask"
    config.sample.update(inputs=f"{masks}/000000070229.png,{masks}/000000090208.png",
                         output_dir=str(tmp_path / "out"), base_checkpoint=str(tmp_path / "base"),
                         upsample=False, steps="2", batch_size=4)
    written = sample_mode.run(config, str(tmp_path / "workdir"))
    names = sorted(os.path.basename(f) for f in written)
    assert names == ["000000070229.png", "000000090208.png", "grid.png"]
    assert Image.open(tmp_path / "out" / "000000070229.png").size == (16, 16)
    # A new input joins; the finished ones are skipped.
    config.sample.inputs += f",{masks}/000000243867.png"
    written = sample_mode.run(config, str(tmp_path / "workdir"))
    assert sorted(os.path.basename(f) for f in written) == ["000000243867.png", "grid.png"]
