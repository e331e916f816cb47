"""File readers, validation, image writing and recipes (no models)."""
import numpy as np
import pytest
from PIL import Image

from glide_jax import images
from glide_jax.data.conditions import colorize_labels
from glide_jax.pipelines import inputs, presets

SAMPLES = "piti_samples"


def test_real_masks_and_label_map(data_dir):
    files = sorted((data_dir / SAMPLES / "test_imgs_mask").glob("*.png"))
    for path in files:
        ref = inputs.read_condition(path, "coco")
        assert ref.shape == (256, 256, 3) and ref.dtype == np.float32
        assert ref.min() >= -1 and ref.max() <= 1
    example = data_dir / SAMPLES / "preprocess_example"
    from_labels = inputs.read_mask(example / "raw_mask.png")   # auto: single channel -> labels
    from_colours = inputs.read_mask(example / "processed_mask.png")
    np.testing.assert_array_equal(from_labels, from_colours)


def test_palette_image_is_read_as_labels(tmp_path):
    labels = np.array([[0, 1], [181, 255]], np.uint8)
    image = Image.fromarray(labels, "P")
    image.putpalette([7] * 768)  # a display palette that must be ignored
    image.save(tmp_path / "p.png")
    ref = inputs.read_mask(tmp_path / "p.png")
    expected = colorize_labels(labels).astype(np.float32) / 127.5 - 1
    np.testing.assert_array_equal(ref[::128, ::128], expected)


def test_sketch_polarity_auto_and_forced(data_dir, tmp_path):
    path = sorted((data_dir / SAMPLES / "test_imgs_sketch").glob("*.png"))[0]
    white_on_black = inputs.read_condition(path, "coco-edge")
    assert white_on_black.shape == (256, 256, 1) and white_on_black.min() == -1
    inverted = 255 - np.asarray(Image.open(path).convert("L"))
    Image.fromarray(inverted).save(tmp_path / "bw.png")
    np.testing.assert_array_equal(inputs.read_sketch(tmp_path / "bw.png"), white_on_black)
    forced = inputs.read_sketch(tmp_path / "bw.png", polarity="white_on_black")
    assert not np.array_equal(forced, white_on_black)


def test_squashes_to_256_nearest(tmp_path):
    Image.fromarray(np.full((40, 90, 3), 200, np.uint8)).save(tmp_path / "m.png")
    ref = inputs.read_condition(tmp_path / "m.png", "coco")
    assert ref.shape == (256, 256, 3)
    np.testing.assert_allclose(ref, 200 / 127.5 - 1)


@pytest.mark.parametrize("ref, message", [
    (np.zeros((256, 256, 3), np.float32), "batched"),
    (np.zeros((1, 128, 96, 3), np.float32), "256x256, got 128x96"),
    (np.zeros((1, 256, 256, 1), np.float32), "must have 3 channels, got"),
    (np.zeros((1, 256, 256, 3), np.uint8), "must be float"),
    (np.full((1, 256, 256, 3), 3.0, np.float32), r"\[-1, 1\]"),
    (np.full((1, 256, 256, 3), np.nan, np.float32), "NaN"),
])
def test_bad_conditions(ref, message):
    with pytest.raises(ValueError, match=message):
        inputs.validate_condition(ref, "coco")


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        inputs.read_condition(tmp_path / "missing.png", "coco")
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(tmp_path / "l.png")
    with pytest.raises(ValueError, match="mask_format='color'"):
        inputs.read_mask(tmp_path / "l.png")
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read"):
        inputs.read_condition(tmp_path / "x.png", "coco")
    with pytest.raises(ValueError, match="unknown PITI mode"):
        inputs.read_condition(tmp_path / "l.png", "cityscapes")
    with pytest.raises(FileNotFoundError, match="no image files"):
        inputs.expand_inputs(str(tmp_path / "*.jpg"))


def test_to_uint8_grid_prompts(tmp_path):
    x = np.array([-1.0, -0.99, 0.0, 0.999, 1.0, 1.2], np.float32)
    np.testing.assert_array_equal(images.to_uint8(x), [0, 1, 128, 255, 255, 255])
    np.testing.assert_array_equal(images.to_uint8(x, "trunc"), [0, 1, 127, 254, 255, 255])
    grid = images.make_grid(np.zeros((5, 4, 4, 3), np.uint8), pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 3)
    (tmp_path / "p.txt").write_text("a cat\n\n a dog \n")
    assert inputs.read_prompts("x | y", str(tmp_path / "p.txt")) == ["x", "y", "a cat", "a dog"]


def test_recipes_and_overrides():
    piti = presets.get_recipe("piti")
    assert (piti.base.respacing, piti.base.sampler, piti.quantization) == ("250", "ancestral",
                                                                           "truncate")
    assert (piti.upsample.respacing, piti.upsample.temperature) == ("fast27", 0.997)
    glide = presets.get_recipe("glide")
    assert (glide.base.guidance_scale, glide.upsample.sampler, glide.quantization) == (3.0, "ddim",
                                                                                       "round")
    r = presets.with_overrides("piti", steps=100, guidance_scale=1.5, sampler="dpm-solver",
                               upsample_steps="ddim25")
    assert (r.base.respacing, r.base.guidance_scale, r.base.sampler) == ("100", 1.5, "dpm-solver")
    assert r.upsample.respacing == "ddim25" and r.quantization == "truncate"
    with pytest.raises(ValueError, match="sampler must be one of"):
        presets.with_overrides("piti", sampler="euler")
    with pytest.raises(ValueError, match="unknown recipe"):
        presets.get_recipe("dalle")


def test_resize_nearest_picks_the_source_pixels():
    """Non-constant images, so a wrong index rule shows: 4x4 -> 8x8 repeats, 8x8 -> 4x4 takes
    every second pixel, and a non-integer ratio takes floor(i * H / size)."""
    x = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    np.testing.assert_array_equal(images.resize_nearest(x, 8), x.repeat(2, 1).repeat(2, 2))
    np.testing.assert_array_equal(images.resize_nearest(x.repeat(2, 1).repeat(2, 2), 4), x)
    y = images.resize_nearest(x, 6)
    idx = np.arange(6) * 4 // 6
    np.testing.assert_array_equal(y, x[:, idx][:, :, idx])
    assert y.shape == (2, 6, 6, 3)
