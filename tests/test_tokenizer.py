"""GlideTokenizer against the official glide-text2im tokens (tests/data/fixtures/tokenizer)."""
import json

import numpy as np
import pytest

from glide_jax.tokenizer import GlideTokenizer
from tests.fixture_utils import FIXTURES

TOKDIR = FIXTURES / "tokenizer"
CASES = json.loads((TOKDIR / "glide_tokens.json").read_text())


@pytest.fixture(scope="module")
def tokenizer():
    return GlideTokenizer.from_glide_files(TOKDIR / "encoder.json.gz", TOKDIR / "vocab.bpe.gz")


def test_vocabulary(tokenizer):
    assert tokenizer.n_vocab == CASES["n_vocab"] == 50257
    assert tokenizer.end_token == CASES["end_token"] == 50256


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: c["prompt"][:24] or "empty")
def test_matches_official_tokens(tokenizer, case):
    assert tokenizer.encode(case["prompt"]) == case["tokens"]
    padded, mask = tokenizer.padded_tokens_and_mask(case["tokens"], 128)
    assert padded == case["padded_tokens_128"]
    assert mask == case["mask_128"]


def test_encode_batch(tokenizer):
    prompts = [c["prompt"] for c in CASES["cases"]]
    tokens, mask = tokenizer.encode_batch(prompts, 128)
    assert tokens.dtype == np.int32 and tokens.shape == (len(prompts), 128)
    assert mask.dtype == np.bool_ and mask.shape == tokens.shape
    for i, case in enumerate(CASES["cases"]):
        np.testing.assert_array_equal(tokens[i], case["padded_tokens_128"])
        np.testing.assert_array_equal(mask[i], case["mask_128"])
    empty = prompts.index("")
    assert (tokens[empty] == 50256).all() and not mask[empty].any()


def test_from_pretrained_folder(tmp_path, tokenizer):
    import gzip
    for src, dst in (("encoder.json.gz", "vocab.json"), ("vocab.bpe.gz", "merges.txt")):
        (tmp_path / dst).write_bytes(gzip.decompress((TOKDIR / src).read_bytes()))
    folder = GlideTokenizer.from_pretrained(tmp_path)
    for case in CASES["cases"]:
        assert folder.encode(case["prompt"]) == case["tokens"]


def test_tiny_tokenizer():
    tok = GlideTokenizer.tiny()
    assert tok.n_vocab == 257 and tok.end_token == 256
    assert tok.encode("Hi é") == list("hi é".encode("utf-8"))
    tokens, mask = tok.encode_batch(["ab", ""], 4)
    np.testing.assert_array_equal(tokens, [[97, 98, 256, 256], [256] * 4])
    np.testing.assert_array_equal(mask, [[True, True, False, False], [False] * 4])
    assert tok.decode(tokens[0]) == "ab"


def test_encode_batch_rejects_a_single_string(tokenizer):
    with pytest.raises(TypeError, match="sequence of prompts"):
        tokenizer.encode_batch("a corgi", 8)
