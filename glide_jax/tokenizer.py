"""GLIDE's text tokenizer: GPT-2 byte-level BPE on the lower-cased prompt (glide-text2im `glide_text2im/tokenizer/bpe.py`).

No start or end token is added; `padded_tokens_and_mask` right-pads with the end token
`n_vocab - 1` (50256 for the real vocabulary). Built on `transformers`' GPT-2 tokenizer, from
  - a local folder or hub name holding vocab.json + merges.txt (`GlideTokenizer.from_pretrained`),
  - glide-text2im's own encoder.json.gz + vocab.bpe.gz (`GlideTokenizer.from_glide_files`),
  - or a tiny byte-level vocabulary for tests and demos (`GlideTokenizer.tiny`, no files).
"""
from __future__ import annotations

import gzip
import json
import os
from typing import Sequence

import numpy as np

DEFAULT_TEXT_CTX = 128
END_TOKEN_TEXT = "<|endoftext|>"


def _read_text(path) -> str:
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return f.read()


def _bytes_to_unicode() -> dict:
    """GPT-2's reversible byte -> printable unicode character table."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class GlideTokenizer:
    """Text -> GLIDE token ids. `n_vocab` includes the end token, which is the last id."""

    def __init__(self, hf_tokenizer):
        self._tok = hf_tokenizer
        self.n_vocab = len(hf_tokenizer)
        end = hf_tokenizer.convert_tokens_to_ids(END_TOKEN_TEXT)
        if end != self.n_vocab - 1:
            raise ValueError(f"the vocabulary must end with {END_TOKEN_TEXT} (id n_vocab - 1 = "
                             f"{self.n_vocab - 1}), found it at {end}")
        self.end_token = self.n_vocab - 1

    @classmethod
    def from_pretrained(cls, name_or_path) -> "GlideTokenizer":
        """A folder with vocab.json + merges.txt (or tokenizer.json), or a hub name like 'gpt2'."""
        from transformers import GPT2TokenizerFast
        return cls(GPT2TokenizerFast.from_pretrained(os.fspath(name_or_path)))

    @classmethod
    def from_glide_files(cls, encoder_json, vocab_bpe) -> "GlideTokenizer":
        """glide-text2im's `encoder.json(.gz)` and `vocab.bpe(.gz)` (its first line is a header)."""
        vocab = json.loads(_read_text(encoder_json))
        lines = _read_text(vocab_bpe).split("\n")
        merges = [tuple(line.split()) for line in lines[1:] if line.strip()]
        return cls.from_vocab_and_merges(vocab, merges)

    @classmethod
    def from_vocab_and_merges(cls, vocab: dict, merges: Sequence) -> "GlideTokenizer":
        from transformers import GPT2TokenizerFast
        return cls(GPT2TokenizerFast(vocab=dict(vocab), merges=list(merges)))

    @classmethod
    def tiny(cls) -> "GlideTokenizer":
        """A 257-token byte-level vocabulary (256 bytes + end token), no merges, no files.

        Every UTF-8 byte of the lower-cased prompt becomes one token; for tests and demos of
        models built with n_vocab=257.
        """
        byte_chars = _bytes_to_unicode()
        vocab = {byte_chars[b]: b for b in range(256)}
        vocab[END_TOKEN_TEXT] = 256
        return cls.from_vocab_and_merges(vocab, [])

    def encode(self, text: str) -> list[int]:
        """Token ids of the lower-cased text, no special tokens."""
        return list(self._tok.encode(text.lower(), add_special_tokens=False))

    def decode(self, tokens: Sequence[int]) -> str:
        return self._tok.decode([t for t in tokens if t != self.end_token])

    def padded_tokens_and_mask(self, tokens: Sequence[int], text_ctx: int = DEFAULT_TEXT_CTX):
        """Truncate to text_ctx, right-pad with the end token. Returns (list[int], list[bool])."""
        tokens = list(tokens)[:text_ctx]
        padding = text_ctx - len(tokens)
        return tokens + [self.end_token] * padding, [True] * len(tokens) + [False] * padding

    def encode_batch(self, prompts: Sequence[str], text_ctx: int = DEFAULT_TEXT_CTX):
        """prompts -> (tokens [B, text_ctx] int32, mask [B, text_ctx] bool).

        The empty prompt "" gives all end tokens and an all-False mask (GLIDE's unconditional
        input).
        """
        if isinstance(prompts, str):
            raise TypeError("encode_batch takes a sequence of prompts, not one string")
        tokens = np.full((len(prompts), text_ctx), self.end_token, np.int32)
        mask = np.zeros((len(prompts), text_ctx), bool)
        for i, prompt in enumerate(prompts):
            ids, m = self.padded_tokens_and_mask(self.encode(prompt), text_ctx)
            tokens[i], mask[i] = ids, m
        return tokens, mask


TINY_VOCAB = 257  # GlideTokenizer.tiny(): bytes + the end token


def default_tokenizer(n_vocab: int):
    """The byte-level tiny tokenizer for 257-token models, else GPT-2's BPE (GLIDE's vocabulary)."""
    if n_vocab == TINY_VOCAB:
        return GlideTokenizer.tiny()
    try:
        return GlideTokenizer.from_pretrained("gpt2")
    except Exception as e:  # no network / no cache: say what to pass instead
        raise RuntimeError(
            "GLIDE needs its GPT-2 BPE tokenizer: pass tokenizer=GlideTokenizer.from_glide_files("
            "'encoder.json.gz', 'vocab.bpe.gz') or GlideTokenizer.from_pretrained(<folder>)") from e
