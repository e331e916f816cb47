"""Property: random valid official option dicts (drawn and laid out by the official constructors
in tools/make_reference.py, tests/data/reference/layouts.json.gz) build here, and the abstract
parameter tree (jax.eval_shape) maps one-to-one onto the official state-dict layout, in
registration order, with the official parameter count."""
import pytest

from glide_jax.convert import convert
from glide_jax.models import create_model
from tests.reference_utils import reference_json

RECORDS = reference_json("layouts")["configs"]


@pytest.mark.parametrize("index", range(len(RECORDS)))
def test_random_option_dict_maps_onto_the_official_layout(index):
    record = RECORDS[index]
    create_model(record["options"])  # builds (and validates) the network
    shapes = convert.expected_shapes(record["options"])
    official = [(key, tuple(shape)) for key, shape in record["layout"]]
    ours = list(convert.torch_layout(shapes).items())
    missing = sorted(set(official) - set(ours))
    unexpected = sorted(set(ours) - set(official))
    assert not missing and not unexpected, (record["official_options"], missing[:5],
                                            unexpected[:5])
    assert ours == official, "same keys and shapes, but not in PyTorch's registration order"
    assert convert.num_params(shapes) == record["num_params"]


def test_random_dicts_span_the_option_space():
    seen = {}
    for record in RECORDS:
        for key, value in record["official_options"].items():
            seen.setdefault((record["family"], key), set()).add(str(value))
    for family in ("glide", "piti"):
        for key in ("resblock_updown", "use_scale_shift_norm", "num_head_channels",
                    "num_heads_upsample", "image_size", "num_res_blocks", "super_res"):
            assert len(seen[(family, key)]) >= 2, (family, key)
    assert len(seen[("piti", "mode")]) == 5 and len(seen[("piti", "learn_sigma")]) == 2
    assert len(seen[("glide", "inpaint")]) == 2 and len(seen[("glide", "xf_padding")]) == 2
