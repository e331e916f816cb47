"""PITI condition construction: palette, sketch distance map, renderings, flip."""
import numpy as np
from PIL import Image

from glide_jax.data import conditions
from glide_jax.data.config import get_data_config
from glide_jax.data.pipeline import PitiTransform


def test_palette_matches_piti_preprocessed_mask(data_dir):
    folder = data_dir / "piti_samples" / "preprocess_example"
    raw = np.asarray(Image.open(folder / "raw_mask.png"))
    expected = np.asarray(Image.open(folder / "processed_mask.png").convert("RGB"))
    np.testing.assert_array_equal(conditions.colorize_labels(raw), expected)


def test_palette_spec_vectors():
    vectors = {0: (128, 0, 0), 1: (0, 128, 0), 2: (128, 128, 0), 3: (0, 0, 128), 4: (128, 0, 128),
               5: (0, 128, 128), 6: (128, 128, 128), 7: (64, 0, 0), 180: (128, 96, 192),
               181: (0, 224, 192), 255: (0, 0, 0)}
    ids = np.array(list(vectors), np.uint8)[None]
    np.testing.assert_array_equal(conditions.colorize_labels(ids)[0], np.array(list(vectors.values())))
    palette = {tuple(c) for c in conditions.COCO_STUFF_PALETTE}
    assert len(palette) == 182 and (255, 255, 255) not in palette and (0, 0, 0) not in palette


def test_sketch_distance_map_is_l1_to_white_strokes():
    sketch = np.zeros((9, 9), np.uint8)
    sketch[4, 4] = 255
    sketch[0, 8] = 254  # not exactly 255: not a stroke
    distance = conditions.sketch_distance_map(sketch)
    rows, cols = np.mgrid[0:9, 0:9]
    np.testing.assert_array_equal(distance, np.abs(rows - 4) + np.abs(cols - 4))
    far = np.zeros((300, 300), np.uint8)
    far[0, 0] = 255
    assert conditions.sketch_distance_map(far)[-1, -1] == 255  # clipped
    assert (conditions.sketch_distance_map(np.zeros((5, 5), np.uint8)) == 255).all()


def test_depth_and_normal_renderings():
    depth = np.linspace(0.6, 20, 64, dtype=np.float32).reshape(8, 8)
    mask = np.ones((8, 8))
    mask[0, 0] = 0
    rgb = conditions.render_depth(depth, mask)
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0], 0)
    assert rgb[1, 0, 2] > rgb[1, 0, 0]  # near = blue end of jet
    normal = np.zeros((4, 4, 3), np.float32)
    normal[..., 2] = 1.0
    normal[..., 0] = -1.0
    out = conditions.render_normal(normal)
    np.testing.assert_array_equal(out[0, 0], [0, 127, 255])  # (n - min) / 2 with truncation


def test_flip_is_shared_by_image_and_condition():
    image = np.zeros((256, 256, 3), np.uint8)
    image[:, :10] = 255
    labels = np.full((256, 256, 1), 156, np.uint8)
    labels[:, :10] = 0
    cfg = get_data_config()
    cfg.image_size, cfg.uncond_p, cfg.mode = 256, 0.0, "coco"
    transform = PitiTransform(cfg, train=True)
    flips = 0
    for seed in range(8):
        out = transform.random_map({"image": image, "label": labels}, np.random.default_rng(seed))
        image_left = out["image"][0, 0, 0] > 0
        cond_left = (out["ref"][0, 0] == conditions.to_unit_range(conditions.COCO_STUFF_PALETTE[0])).all()
        assert image_left == cond_left
        flips += not image_left
    assert 0 < flips < 8
