"""A PyTorch `.pt` reader that needs no torch and runs no code from the file.

Reads both the zip format (torch >= 1.6) and the legacy pickle stream (``torch.save(...,
_use_new_zipfile_serialization=False)``). The unpickler resolves only the globals in
``_SAFE_GLOBALS`` (tensor and storage rebuild functions, OrderedDict), replaced by local functions that build numpy
arrays; any other global (``os.system``, ``builtins.eval``, a class) is refused before it is called.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

try:  # bfloat16 for numpy, shipped with jax
    from ml_dtypes import bfloat16 as _BFLOAT16
except ImportError:  # pragma: no cover
    _BFLOAT16 = None


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The pickle asks for a global that a weights-only checkpoint never needs."""


_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": _BFLOAT16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class _StorageType:
    def __init__(self, name):
        if _STORAGE_DTYPES.get(name) is None:
            raise UnsafeCheckpointError(f"unsupported storage type torch.{name}")
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A storage whose bytes are filled in once known (after the pickle, in the legacy format)."""

    def __init__(self, dtype, numel):
        self.dtype, self.numel, self.data = dtype, numel, None


class _LazyTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, offset
        self.size, self.stride = tuple(size), tuple(stride)

    def materialize(self, byteorder):
        s = self.storage
        if s.data is None:
            raise pickle.UnpicklingError("a tensor refers to a storage that the file does not hold")
        flat = np.frombuffer(s.data, dtype=s.dtype.newbyteorder(byteorder), count=s.numel)
        if all(self.size):
            last = self.offset + sum((n - 1) * st for n, st in zip(self.size, self.stride))
            if self.offset < 0 or min(self.stride, default=0) < 0 or last >= s.numel:
                raise pickle.UnpicklingError("a tensor reaches past the end of its storage")
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[st * item for st in self.stride])
        return np.array(view, dtype=s.dtype.newbyteorder("="))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


_SAFE_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, storage_factory):
        super().__init__(file)
        self._storage_factory = storage_factory

    def find_class(self, module, name):
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"refusing to load global '{module}.{name}': a weights-only checkpoint needs only "
            "tensors, and loading it could run code")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        return self._storage_factory(pid)


def _plain_load(stream):
    def refuse(pid):
        raise pickle.UnpicklingError("unexpected persistent id")
    unpickler = _RestrictedUnpickler(stream, refuse)
    return unpickler.load()


def _materialize(obj, byteorder):
    if isinstance(obj, _LazyTensor):
        return obj.materialize(byteorder)
    if isinstance(obj, dict):
        return type(obj)((k, _materialize(v, byteorder)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v, byteorder) for v in obj)
    return obj


def _load_zip(path):
    with zipfile.ZipFile(path) as zf:
        pkl = [n for n in zf.namelist() if n.endswith("data.pkl")]
        if len(pkl) != 1:
            raise pickle.UnpicklingError("zip archive without exactly one data.pkl")
        prefix = pkl[0][: -len("data.pkl")]
        names = set(zf.namelist())
        byteorder = "<"
        if f"{prefix}byteorder" in names and zf.read(f"{prefix}byteorder").strip() == b"big":
            byteorder = ">"
        storages: dict[str, _Storage] = {}

        def storage(pid):
            _, storage_type, key, _location, numel = pid[:5]
            if key not in storages:
                s = _Storage(storage_type.dtype, numel)
                s.data = zf.read(f"{prefix}data/{key}")
                if len(s.data) < numel * s.dtype.itemsize:
                    raise pickle.UnpicklingError(f"storage {key} is shorter than its tensors")
                storages[key] = s
            return storages[key]

        obj = _RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), storage).load()
    return _materialize(obj, byteorder)


def _load_legacy(path):
    with open(path, "rb") as f:
        if _plain_load(f) != _LEGACY_MAGIC:
            raise pickle.UnpicklingError("not a PyTorch file (bad magic number)")
        if _plain_load(f) != _LEGACY_PROTOCOL:
            raise pickle.UnpicklingError("unsupported legacy PyTorch protocol version")
        sys_info = _plain_load(f)
        byteorder = ">" if isinstance(sys_info, dict) and not sys_info.get(
            "little_endian", True) else "<"
        storages: dict[str, _Storage] = {}

        def storage(pid):
            _, storage_type, key, _location, numel = pid[:5]
            if len(pid) > 5 and pid[5] is not None:
                raise pickle.UnpicklingError("legacy storage views are not supported")
            storages.setdefault(key, _Storage(storage_type.dtype, numel))
            return storages[key]

        obj = _RestrictedUnpickler(f, storage).load()
        keys = _plain_load(f)
        for key in keys:
            s = storages[key]
            header = f.read(8)
            if len(header) != 8:
                raise pickle.UnpicklingError("file ends inside the tensor data")
            (numel,) = struct.unpack(byteorder + "q", header)
            nbytes = numel * s.dtype.itemsize
            s.data = f.read(nbytes)
            s.numel = numel
            if len(s.data) != nbytes:
                raise pickle.UnpicklingError("file ends inside the tensor data")
    return _materialize(obj, byteorder)


def load_pickle_checkpoint(path) -> object:
    """Loads a `.pt` file (zip or legacy) into numpy arrays in the file's container structure.

    Raises UnsafeCheckpointError for any global outside the tensor-rebuild allow-list and
    pickle.UnpicklingError (or a subclass of OSError/ValueError) for corrupt files.
    """
    if zipfile.is_zipfile(path):
        return _load_zip(path)
    return _load_legacy(path)
