"""PyTorch state-dict keys <-> Flax parameter paths, as tables (docs/architecture.md).

A key maps to a path by renaming its module tokens (``SEQUENTIAL_NAMES``, ``TIMESTEP_SEQUENTIALS``)
and its leaf (``LEAF_RULES``); tensors change layout by the rule's transform. Nothing here knows a
model: the strict checks against a model's parameter tree live in ``glide_jax.convert.convert``.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Callable

import numpy as np

# A numeric index after one of these names is joined with "_": input_blocks.5 -> input_blocks_5.
SEQUENTIAL_NAMES = frozenset({"input_blocks", "output_blocks", "time_embed", "in_layers",
                              "emb_layers", "out_layers", "out", "resblocks"})
# A numeric child of these TimestepEmbedSequential paths becomes layers_<i>.
_TIMESTEP_SEQUENTIAL = re.compile(r"^(input_blocks_\d+|output_blocks_\d+|middle_block)$")
# Raw parameters (no weight/bias leaf): same name, same shape.
RAW_PARAMS = frozenset({"positional_embedding", "padding_embedding", "cls_token"})
# Attention projections that PyTorch implements as Conv1d(kernel 1) and Flax as Dense.
CONV1D_MODULES = frozenset({"qkv", "encoder_kv", "proj_out"})
EMBEDDING_MODULES = frozenset({"token_embedding"})


def _identity(x):
    return x


def _conv2d_to_flax(w):  # [O, I, kh, kw] -> [kh, kw, I, O]
    return np.transpose(w, (2, 3, 1, 0))


def _conv2d_to_torch(k):  # [kh, kw, I, O] -> [O, I, kh, kw]
    return np.transpose(k, (3, 2, 0, 1))


def _conv1d_to_flax(w):  # [O, I, 1] -> [I, O]
    return np.transpose(w[:, :, 0])


def _conv1d_to_torch(k):  # [I, O] -> [O, I, 1]
    return np.transpose(k)[:, :, None]


def _linear(w):  # [O, I] <-> [I, O]
    return np.transpose(w)


@dataclasses.dataclass(frozen=True)
class LeafRule:
    """One way a PyTorch leaf tensor becomes a Flax leaf (and back)."""
    name: str
    torch_leaf: str
    flax_leaf: str
    torch_ndim: int
    flax_ndim: int
    modules: Callable[[str], bool]  # which module names (last module token) the rule applies to
    to_flax: Callable[[np.ndarray], np.ndarray]
    to_torch: Callable[[np.ndarray], np.ndarray]
    torch_shape: Callable[[tuple], tuple]  # flax shape -> torch shape


def _any(module):
    return True


LEAF_RULES = (
    LeafRule("conv2d", "weight", "kernel", 4, 4, _any, _conv2d_to_flax, _conv2d_to_torch,
             lambda s: (s[3], s[2], s[0], s[1])),
    LeafRule("conv1d_k1", "weight", "kernel", 3, 2, lambda m: m in CONV1D_MODULES,
             _conv1d_to_flax, _conv1d_to_torch, lambda s: (s[1], s[0], 1)),
    LeafRule("linear", "weight", "kernel", 2, 2,
             lambda m: m not in CONV1D_MODULES and m not in EMBEDDING_MODULES,
             _linear, _linear, lambda s: (s[1], s[0])),
    LeafRule("embedding", "weight", "embedding", 2, 2, lambda m: m in EMBEDDING_MODULES,
             _identity, _identity, tuple),
    LeafRule("norm", "weight", "scale", 1, 1, _any, _identity, _identity, tuple),
    LeafRule("bias", "bias", "bias", 1, 1, _any, _identity, _identity, tuple),
)
RAW_RULE = LeafRule("raw", "", "", -1, -1, lambda m: m in RAW_PARAMS, _identity, _identity, tuple)


class KeyMappingError(ValueError):
    """A key or path that no rule of the table covers."""


def _module_path_to_flax(tokens: list[str], key: str) -> list[str]:
    out: list[str] = []
    for tok in tokens:
        if tok.isdigit():
            if out and out[-1] in SEQUENTIAL_NAMES:
                out[-1] = f"{out[-1]}_{tok}"
            elif out and _TIMESTEP_SEQUENTIAL.match(out[-1]):
                out.append(f"layers_{tok}")
            else:
                after = out[-1] if out else "nothing"
                raise KeyMappingError(f"{key}: index {tok} follows {after}, "
                                      "which is not a known Sequential")
        else:
            out.append(tok)
    return out


def _module_path_to_torch(parts: list[str], path: str) -> list[str]:
    out: list[str] = []
    for part in parts:
        head, _, index = part.rpartition("_")
        if head == "layers" and index.isdigit():
            out.append(index)
        elif index.isdigit() and head in SEQUENTIAL_NAMES:
            out.extend([head, index])
        else:
            out.append(part)
    return out


def _module_name(parts: list[str]) -> str:
    """The Flax/torch module name a leaf belongs to, without a Sequential index."""
    if not parts:
        return ""
    return re.sub(r"_\d+$", "", parts[-1])


def _find_rule(name: str, parts: list[str], ndim: int, side: str) -> LeafRule:
    if parts[-1] in RAW_PARAMS:
        return RAW_RULE
    module = _module_name(parts[:-1])
    for rule in LEAF_RULES:
        if (getattr(rule, f"{side}_leaf") == parts[-1] and getattr(rule, f"{side}_ndim") == ndim
                and rule.modules(module)):
            return rule
    raise KeyMappingError(f"{name}: no rule for a {ndim}-d '{parts[-1]}' of module '{module}'")


def torch_rule(key: str, ndim: int) -> LeafRule:
    """The rule for a PyTorch key whose tensor has `ndim` dimensions."""
    return _find_rule(key, key.split("."), ndim, "torch")


def flax_rule(path: str, ndim: int) -> LeafRule:
    """The rule for a Flax path whose array has `ndim` dimensions."""
    return _find_rule(path, path.split("/"), ndim, "flax")


def torch_key_to_flax_path(key: str, ndim: int) -> str:
    """`input_blocks.5.1.qkv.weight` (3-d) -> `input_blocks_5/layers_1/qkv/kernel`."""
    rule = torch_rule(key, ndim)
    tokens = key.split(".")
    if rule is RAW_RULE:
        return "/".join(_module_path_to_flax(tokens[:-1], key) + [tokens[-1]])
    return "/".join(_module_path_to_flax(tokens[:-1], key) + [rule.flax_leaf])


def flax_path_to_torch_key(path: str, ndim: int) -> str:
    """`input_blocks_5/layers_1/qkv/kernel` (2-d) -> `input_blocks.5.1.qkv.weight`."""
    rule = flax_rule(path, ndim)
    parts = path.split("/")
    leaf = parts[-1] if rule is RAW_RULE else rule.torch_leaf
    return ".".join(_module_path_to_torch(parts[:-1], path) + [leaf])


def tensor_to_flax(key: str, value: np.ndarray) -> tuple[str, np.ndarray]:
    rule = torch_rule(key, value.ndim)
    return torch_key_to_flax_path(key, value.ndim), rule.to_flax(value)


def tensor_to_torch(path: str, value: np.ndarray) -> tuple[str, np.ndarray]:
    rule = flax_rule(path, value.ndim)
    return flax_path_to_torch_key(path, value.ndim), rule.to_torch(value)


def torch_shape_of(path: str, flax_shape: tuple) -> tuple:
    """The PyTorch shape of the tensor stored at a Flax path of shape `flax_shape`."""
    return tuple(flax_rule(path, len(flax_shape)).torch_shape(tuple(flax_shape)))


# --- PyTorch registration order (torch.nn.Module.state_dict) -------------------------------------------------
# Within a module: own parameters first, then children in assignment order. One global rank list
# is consistent with every module of GLIDE and PITI (checked against the layouts in the tests).
_NAME_RANK = {name: i for i, name in enumerate((
    # PITI Text2ImModel
    "encoder", "decoder",
    # own parameters of Text2ImUNet / Encoder
    "cls_token", "positional_embedding", "padding_embedding",
    # UNet children, then text/encoder children
    "time_embed", "input_blocks", "middle_block", "output_blocks", "out",
    "transformer", "cnn", "final_ln", "token_embedding", "transformer_proj",
    # ResBlock
    "in_layers", "emb_layers", "out_layers", "skip_connection",
    # Downsample / Upsample (resblock_updown=False): their only child
    "op", "conv",
    # AttentionBlock
    "norm", "qkv", "encoder_kv", "proj_out",
    # transformer
    "resblocks", "attn", "ln_1", "mlp", "ln_2", "c_qkv", "c_fc", "c_proj",
    # leaves
    "weight", "bias",
))}
_CNN_LAYER = re.compile(r"^(conv|norm)(\d+)$")


def _token_rank(token: str):
    if token.isdigit():
        return (0, int(token), 0)
    cnn = _CNN_LAYER.match(token)
    if cnn:  # conv1, norm1, conv2, norm2, ..., conv6
        return (1, int(cnn.group(2)), 0 if cnn.group(1) == "conv" else 1)
    if token not in _NAME_RANK:
        raise KeyMappingError(f"no registration order known for module name '{token}'")
    return (2, _NAME_RANK[token], 0)


def torch_order_key(key: str):
    """Sort key that puts state-dict keys in PyTorch registration order."""
    return tuple(_token_rank(t) for t in key.split("."))
