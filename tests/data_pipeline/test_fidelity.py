"""The demo domain's mask-fidelity metric separates right from wrong."""
import numpy as np
import pytest

from glide_jax.data import conditions, fidelity, synthetic


@pytest.mark.parametrize("size,ceiling", [(32, 0.85), (64, 0.9)])
def test_ground_truth_scores_high_and_mismatched_masks_low(size, ceiling):
    photos, labels = fidelity.ground_truth(32, size)
    assert fidelity.mask_fidelity(photos, labels)["miou"] >= ceiling
    assert fidelity.mask_fidelity(photos, np.roll(labels, 1, axis=0))["miou"] < 0.5


def test_painted_classes_score_one_and_swapped_classes_zero():
    _, labels = fidelity.ground_truth(4, 32)
    colour = {cid: np.asarray(c, np.uint8) for cid, _, c in fidelity.CLASSES}
    small = labels[:, ::8, ::8]
    painted = np.zeros(small.shape + (3,), np.uint8)
    for cid, c in colour.items():
        painted[small == cid] = c
    scores = fidelity.mask_fidelity(painted, labels)
    assert scores["miou"] == pytest.approx(1.0)
    sky, grass = synthetic.BACKGROUNDS[0][0], synthetic.BACKGROUNDS[1][0]
    swapped = painted.copy()
    swapped[small == sky], swapped[small == grass] = colour[grass], colour[sky]
    scores = fidelity.mask_fidelity(swapped, labels)
    assert scores["iou/sky"] == 0.0 and scores["iou/grass"] == 0.0


def test_colour_masks_give_the_same_labels_and_unknown_colours_are_named():
    example = synthetic.make_example(1, 0)
    mask = conditions.COCO_STUFF_PALETTE[example["label"][..., 0]].astype(np.uint8)[None]
    np.testing.assert_array_equal(fidelity.labels_from_colour_masks(mask),
                                  example["label"][None, ..., 0])
    mask[0, :4, :4] = (1, 2, 3)
    with pytest.raises(ValueError, match=r"\(1, 2, 3\)"):
        fidelity.labels_from_colour_masks(mask)


def test_shape_presence_of_ground_truth_and_of_other_captions():
    examples = [synthetic.make_example(1, i) for i in range(48)]
    photos = np.stack([conditions.resize_photo(e["image"], 32) for e in examples])
    captions = [e["captions"][0] for e in examples]
    own = fidelity.shape_presence(photos, captions)
    other = fidelity.shape_presence(photos, captions[1:] + captions[:1])
    assert own["recall"] > 0.9 and own["false_presence"] < 0.1
    assert other["recall"] < 0.75 and other["false_presence"] > 0.3
