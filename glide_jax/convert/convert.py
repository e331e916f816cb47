"""Strict PyTorch state dict <-> Flax params conversion for GLIDE and PITI.

The set of keys and shapes a conversion must produce comes from the model's own parameter tree
(`glide_jax.models.abstract_params`), mapped to PyTorch names by the `keymap` tables; the state
dict must match it exactly. Parts of a PITI model:
  "full"     Text2ImModel / SuperResText2ImModel state dict (`encoder.*` + `decoder.*` keys)
  "encoder"  encoder-only (stage-1) state dict, keys without the `encoder.` prefix
  "decoder"  decoder-only state dict (model.decoder.state_dict()), keys without `decoder.`
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import json
from typing import Mapping

import numpy as np
from flax import traverse_util

from glide_jax.convert import keymap

PARTS = ("full", "encoder", "decoder")
_PIECES_SHOWN = 20


class ConversionError(ValueError):
    """A state dict and a model disagree. Lists every missing, unexpected and mis-shaped key."""

    def __init__(self, what: str, missing=(), unexpected=(), misshaped=(), hint: str = ""):
        self.missing, self.unexpected, self.misshaped = list(missing), list(unexpected), list(
            misshaped)
        lines = [what]
        for title, items in (("missing", self.missing), ("unexpected", self.unexpected),
                             ("mis-shaped", [f"{k}: got {tuple(g)}, expected {tuple(e)}"
                                             for k, g, e in self.misshaped])):
            if items:
                lines.append(f"  {len(items)} {title} key(s): " + ", ".join(items[:_PIECES_SHOWN])
                             + (f", ... and {len(items) - _PIECES_SHOWN} more"
                                if len(items) > _PIECES_SHOWN else ""))
        if hint:
            lines.append(f"  hint: {hint}")
        super().__init__("\n".join(lines))


# --- parameter trees ----------------------------------------------------------------------------

def unwrap_params(tree):
    """Accepts a params tree or a variables dict {"params": tree}; returns (tree, wrapped)."""
    if isinstance(tree, Mapping) and set(tree.keys()) == {"params"}:
        return tree["params"], True
    return tree, False


def flatten(tree) -> dict:
    """Nested params -> {"a/b/kernel": leaf}."""
    return traverse_util.flatten_dict(unwrap_params(tree)[0], sep="/")


def unflatten(flat: Mapping) -> dict:
    return traverse_util.unflatten_dict(dict(flat), sep="/")


def _resolve(options) -> dict:
    """Fills the family defaults (and `family` itself) so partial option dicts work."""
    from glide_jax.models.options import resolve_options
    return resolve_options(dict(options))


def _model_shapes(options) -> dict:
    if options.get("encoder_spatial"):
        raise ConversionError(
            "option encoder_spatial=True (the demo's spatial path, PITIDecoder.spatial_proj_*) has "
            "no counterpart in the official PITI code, so there is no PyTorch layout to convert "
            "to or from; glide_jax keeps such models in its own formats (orbax, safetensors)")
    return dict(_cached_model_shapes(json.dumps(options, sort_keys=True, default=str)))


@functools.lru_cache(maxsize=16)
def _cached_model_shapes(options_json: str) -> tuple:
    """abstract_params is pure in the options but costs seconds to trace at full size."""
    from glide_jax.models import abstract_params
    return tuple((p, tuple(v.shape))
                 for p, v in flatten(abstract_params(json.loads(options_json))).items())


def _select_part(shapes: dict, options, part: str) -> dict:
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    if part == "full":
        return shapes
    if options.get("family") != "piti":
        raise ValueError(f"part={part!r} exists only for PITI models, not family "
                         f"{options.get('family')!r}")
    prefix = part + "/"
    return {p[len(prefix):]: s for p, s in shapes.items() if p.startswith(prefix)}


def expected_shapes(options, part: str = "full") -> dict:
    """{flax path: shape} of the model's params (or of one PITI part), no memory allocated."""
    options = _resolve(options)
    return _select_part(_model_shapes(options), options, part)


def torch_layout(shapes: Mapping) -> "collections.OrderedDict[str, tuple]":
    """{flax path: shape} -> {torch key: torch shape} in PyTorch registration order."""
    layout = {keymap.flax_path_to_torch_key(p, len(s)): keymap.torch_shape_of(p, s)
              for p, s in shapes.items()}
    return collections.OrderedDict(
        (k, layout[k]) for k in sorted(layout, key=keymap.torch_order_key))


def flax_layout(torch_shapes: Mapping) -> dict:
    """{torch key: torch shape} (e.g. a layout JSON) -> {flax path: Flax shape}."""
    out = {}
    for key, shape in torch_shapes.items():
        rule = keymap.torch_rule(key, len(shape))
        fake = np.broadcast_to(np.float32(0), tuple(shape))  # zero-copy, only the shape is used
        out[keymap.torch_key_to_flax_path(key, len(shape))] = rule.to_flax(fake).shape
    return out


def num_params(shapes_or_params: Mapping) -> int:
    """Scalars in a {path: shape or array} mapping (glide_jax.models.count_params)."""
    from glide_jax.models import count_params
    return count_params(dict(shapes_or_params))


# --- the conversion itself ----------------------------------------------------------------------

def convert_to_flax(state_dict: Mapping, shapes: Mapping, what: str = "state dict",
                    hint: str = "", allow_missing: bool = False) -> tuple[dict, list]:
    """Maps every key of `state_dict` onto the flat Flax `shapes`, strictly.

    Returns ({flax path: float32 array}, missing torch keys); missing keys raise unless
    allow_missing. Arrays may be views of the inputs (no copies: transposes are lazy).
    """
    by_torch = {keymap.flax_path_to_torch_key(p, len(s)): p for p, s in shapes.items()}
    flat, unexpected, misshaped = {}, [], []
    for key, value in state_dict.items():
        path = by_torch.get(key)
        if path is None:
            unexpected.append(key)
            continue
        want = keymap.torch_shape_of(path, shapes[path])
        if tuple(value.shape) != want:
            misshaped.append((key, value.shape, want))
            continue
        value = np.asarray(value)
        rule = keymap.flax_rule(path, len(shapes[path]))
        flat[path] = rule.to_flax(value.astype(np.float32, copy=False))
    seen = set(state_dict)
    missing = [k for k in torch_layout(shapes) if k not in seen]
    if unexpected or misshaped or (missing and not allow_missing):
        raise ConversionError(f"{what} does not match the model",
                              [] if allow_missing else missing, unexpected, misshaped, hint)
    return flat, missing


def check_tree(flat_params: Mapping, shapes: Mapping, what: str = "params") -> Mapping:
    """`flat_params` {flax path: array} must have exactly the paths and shapes of `shapes`;
    otherwise one ConversionError lists every missing, unexpected and mis-shaped path. The one
    strict tree check of the project (conversion, and the train state's initial params)."""
    missing = [p for p in shapes if p not in flat_params]
    unexpected = [p for p in flat_params if p not in shapes]
    misshaped = [(p, np.shape(v), shapes[p]) for p, v in flat_params.items()
                 if p in shapes and tuple(np.shape(v)) != tuple(shapes[p])]
    if missing or unexpected or misshaped:
        raise ConversionError(f"{what} do not match the model (Flax paths)", missing, unexpected,
                              misshaped)
    return flat_params


def convert_to_torch(flat_params: Mapping, shapes: Mapping,
                     what: str = "params") -> "collections.OrderedDict[str, np.ndarray]":
    """Flat Flax params -> PyTorch state dict in registration order, strictly against `shapes`."""
    check_tree(flat_params, shapes, what)
    state = {}
    for path, value in flat_params.items():
        key, tensor = keymap.tensor_to_torch(path, np.asarray(value, dtype=np.float32))
        state[key] = tensor
    return collections.OrderedDict(
        (k, np.ascontiguousarray(state[k])) for k in sorted(state, key=keymap.torch_order_key))


# --- public API ---------------------------------------------------------------------------------

def _looks_like(state_dict: Mapping) -> str:
    keys = list(state_dict)
    if any(k.startswith(("encoder.", "decoder.")) for k in keys):
        return "piti-full"
    if "cnn.conv1.weight" in state_dict or "cls_token" in state_dict:
        return "piti-encoder"
    if "token_embedding.weight" in state_dict:
        return "glide"
    if "transformer_proj.weight" in state_dict and "time_embed.0.weight" in state_dict:
        return "piti-decoder"
    return "unknown"


def _hint(state_dict: Mapping, options, part: str) -> str:
    kind = _looks_like(state_dict)
    family = options.get("family", "glide")
    if family == "piti" and part == "full" and kind == "piti-encoder":
        return ("this looks like an encoder-only (stage-1) PITI checkpoint, keys without the "
                "'encoder.' prefix; convert it with part='encoder'")
    if family == "piti" and part == "full" and kind == "glide":
        return ("this looks like a GLIDE checkpoint; to initialise a PITI decoder from it use "
                "glide_to_piti_decoder (CLI: --part=glide-decoder)")
    if family == "piti" and part in ("encoder", "decoder") and kind == "piti-full":
        return "this is a full PITI checkpoint ('encoder.*'/'decoder.*' keys); use part='full'"
    if family == "glide" and kind.startswith("piti"):
        return "this looks like a PITI checkpoint but the options are for a GLIDE model"
    return ""


def torch_to_flax(state_dict: Mapping, options, part: str = "full"):
    """Official PyTorch state dict -> Flax params (numpy float32), strict.

    state_dict: {key: array} as from `load_state_dict`. options: model options (a preset).
    part: "full", or for PITI "encoder"/"decoder" (state dicts without that prefix); the result
      is then the params subtree of that part. Returns the same structure as
      `abstract_params(options)` (or its part). Raises ConversionError listing every missing,
      unexpected and mis-shaped key.
    """
    options = _resolve(options)
    shapes = _select_part(_model_shapes(options), options, part)
    flat, _ = convert_to_flax(state_dict, shapes, f"{part} state dict",
                              _hint(state_dict, options, part))
    return unflatten(flat)


def flax_to_torch(params, options, part: str = "full") -> "collections.OrderedDict":
    """Flax params -> PyTorch state dict (numpy float32) in PyTorch registration order, strict.

    `torch.save` of the result (as torch tensors) gives the official key order; part as in
    `torch_to_flax` (encoder/decoder: keys without the prefix, like model.encoder.state_dict()).
    """
    shapes = expected_shapes(options, part)
    return convert_to_torch(flatten(params), shapes, f"{part} params")


# --- GLIDE -> PITI decoder ----------------------------------------------------------------------

def is_glide_text_key(key: str) -> bool:
    """Keys PITI's image_train.py deletes from a GLIDE checkpoint before loading the decoder."""
    if key.startswith("transformer") and "transformer_proj" not in key:
        return True
    return key.startswith(("padding_embedding", "positional_embedding", "token_embedding",
                           "final_ln"))


@dataclasses.dataclass
class DecoderInitReport:
    """What `glide_to_piti_decoder` did, by PyTorch key (decoder-relative)."""
    loaded: list
    dropped: list

    def summary(self) -> str:
        return (f"{len(self.loaded)} tensors loaded into the decoder, {len(self.dropped)} GLIDE "
                "text-side tensors dropped")


def glide_decoder_split(state_dict: Mapping) -> tuple[dict, list]:
    kept = {k: v for k, v in state_dict.items() if not is_glide_text_key(k)}
    return kept, [k for k in state_dict if is_glide_text_key(k)]


def glide_to_piti_decoder(state_dict: Mapping, options):
    """Initialises a PITI decoder from a GLIDE base.pt/upsample.pt state dict, as PITI's
    `image_train.py` does with --model_path.

    Drops the text transformer (keeping transformer_proj), padding/positional/token embeddings and
    final_ln, then maps the rest onto the decoder of `options` (a PITI preset) strictly (PITI
    loads with strict=True): a decoder tensor the file lacks is an error.
    Returns (decoder params tree, DecoderInitReport).
    """
    options = _resolve(options)
    shapes = _select_part(_model_shapes(options), options, "decoder")
    return glide_to_decoder_shapes(state_dict, shapes)


def glide_to_decoder_shapes(state_dict: Mapping, shapes: Mapping):
    """`glide_to_piti_decoder` against explicit flat decoder `shapes` {flax path: shape}."""
    if _looks_like(state_dict) != "glide":
        raise ConversionError("expected a GLIDE checkpoint (token_embedding.weight, "
                              f"transformer.*), got one that looks like {_looks_like(state_dict)}")
    kept, dropped = glide_decoder_split(state_dict)
    flat, _ = convert_to_flax(kept, shapes, "GLIDE state dict (text keys dropped)")
    return unflatten(flat), DecoderInitReport(loaded=list(kept), dropped=dropped)
