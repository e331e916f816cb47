"""Reading and writing PyTorch-side state dicts (`.pt`/`.pth`, `.safetensors`) as numpy.

`load_state_dict` never executes code from the file: `.pt` files go through
`torch.load(weights_only=True)` when torch is installed, else through the allow-list unpickler of
`pickle_reader`; both refuse any global that is not a tensor-rebuild function.
"""
from __future__ import annotations

import collections
import os
import pickle
import struct
import zipfile

import numpy as np

from glide_jax.convert import pickle_reader


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read (missing, truncated, not a checkpoint, unsafe)."""


class UnsafeCheckpointError(CheckpointError):
    """The file asks to run code (a pickle global outside the tensor-rebuild allow-list)."""


# Containers that training scripts wrap a state dict in, tried in this order.
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "ema", "module")
_PICKLE_PROTOCOL_BYTE = b"\x80"


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _sniff(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) >= 9:
        header_len = int.from_bytes(head[:8], "little")
        if head[8:9] == b"{" and 0 < header_len < os.path.getsize(path):
            return "safetensors"
    if zipfile.is_zipfile(path):
        return "zip"
    if head.startswith(b"PK"):
        raise CheckpointError(f"{path}: truncated or corrupt zip archive (a .pt file cut short?)")
    if head.startswith(_PICKLE_PROTOCOL_BYTE):
        return "legacy"
    raise CheckpointError(f"{path}: not a PyTorch (.pt zip or pickle) or safetensors checkpoint "
                          f"(starts with {head[:8]!r})")


def _to_numpy(value):
    """torch tensors (torch backend) or numpy arrays (builtin backend) -> numpy, floats in f32."""
    if hasattr(value, "detach"):  # torch.Tensor
        value = value.detach().cpu()
        value = value.float().numpy() if value.is_floating_point() else value.numpy()
    value = np.asarray(value)
    if np.issubdtype(value.dtype, np.floating) or value.dtype.name == "bfloat16":
        value = value.astype(np.float32)
    return np.ascontiguousarray(value)


def _is_tensor(value) -> bool:
    return isinstance(value, np.ndarray) or hasattr(value, "detach")


def _unwrap(obj, path: str) -> dict:
    if isinstance(obj, dict) and obj and all(_is_tensor(v) for v in obj.values()):
        state = obj
    else:
        state = None
        if isinstance(obj, dict):
            for key in _WRAPPER_KEYS:
                inner = obj.get(key)
                if isinstance(inner, dict) and inner and all(_is_tensor(v) for v in inner.values()):
                    state = inner
                    break
        if state is None:
            found = (f"a dict with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, dict)
                     else type(obj).__name__)
            raise CheckpointError(f"{path}: holds {found}, not a state dict of tensors (also "
                                  f"looked inside {', '.join(_WRAPPER_KEYS)})")
    keys = list(state)
    if all(isinstance(k, str) and k.startswith("module.") for k in keys):  # DataParallel
        keys = [k[len("module."):] for k in keys]
    return collections.OrderedDict((k, _to_numpy(v)) for k, v in zip(keys, state.values()))


def _load_safetensors(path: str) -> dict:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable safetensors file ({e})") from e


def _load_pickle(path: str, backend: str, kind: str):
    if backend == "torch":
        import torch
        try:  # mmap (zip only) avoids holding the file's bytes and the float32 copies at once
            return torch.load(path, map_location="cpu", weights_only=True, mmap=kind == "zip")
        except pickle.UnpicklingError as e:
            if "Weights only load failed" in str(e):
                raise UnsafeCheckpointError(
                    f"{path}: refused to load: the pickle asks for objects other than tensors, "
                    f"and loading it could run code.\n{str(e).splitlines()[-1]}") from e
            raise CheckpointError(f"{path}: corrupt or truncated PyTorch file ({e})") from e
        except (RuntimeError, EOFError, OSError, ValueError, KeyError) as e:
            raise CheckpointError(f"{path}: corrupt or truncated PyTorch file ({e})") from e
    try:
        return pickle_reader.load_pickle_checkpoint(path)
    except pickle_reader.UnsafeCheckpointError as e:
        raise UnsafeCheckpointError(f"{path}: refused to load: {e}") from e
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, KeyError, TypeError,
            IndexError, AttributeError, struct.error) as e:
        raise CheckpointError(f"{path}: corrupt or truncated PyTorch file ({e})") from e


def load_state_dict(path, backend: str = "auto") -> dict:
    """Reads a checkpoint file into {key: np.ndarray}, floating tensors as float32.

    path: `.pt`/`.pth` (zip or legacy pickle format) or `.safetensors`; the format is detected
      from the content. A state dict wrapped in {"state_dict"|"model"|"ema"|...: ...} is unwrapped
      and a DataParallel "module." prefix stripped. Keys keep the file's order.
    backend: "torch" (torch.load(weights_only=True)), "builtin" (this package's allow-list
      unpickler, no torch needed) or "auto" (torch when installed).
    Raises CheckpointError naming the path (missing, truncated, not a checkpoint) and its
    subclass UnsafeCheckpointError when the pickle would run code.
    """
    path = os.fspath(path)
    if backend not in ("auto", "torch", "builtin"):
        raise ValueError(f"backend must be auto, torch or builtin, got {backend!r}")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    kind = _sniff(path)
    if kind == "safetensors":
        return _unwrap(_load_safetensors(path), path)
    if backend == "auto":
        backend = "torch" if _torch_available() else "builtin"
    return _unwrap(_load_pickle(path, backend, kind), path)


def save_state_dict(path, state_dict: dict) -> None:
    """Writes {key: array} to `.safetensors` (no torch needed) or `.pt`/`.pth` (torch.save).

    `.pt` files keep the dict's key order (use `flax_to_torch` for the official order).
    """
    path = os.fspath(path)
    arrays = collections.OrderedDict((k, np.ascontiguousarray(v)) for k, v in state_dict.items())
    if path.endswith(".safetensors"):
        from safetensors.numpy import save_file
        save_file(dict(arrays), path)
        return
    if not _torch_available():
        raise CheckpointError(f"{path}: writing a PyTorch file needs torch: pip install "
                              "'glide_jax[torch]' (or write a .safetensors file instead)")
    import torch
    torch.save(collections.OrderedDict((k, torch.from_numpy(v)) for k, v in arrays.items()), path)
