"""Converted Flax params on disk: an orbax checkpoint `DIR/params` plus `DIR/options.json`."""
from __future__ import annotations

import json
import os

import numpy as np

PARAMS_SUBDIR = "params"
OPTIONS_FILE = "options.json"


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_params(directory, params, options) -> str:
    """Writes `params` (nested dict of arrays) and `options` (a dict) under `directory`.

    Returns the absolute directory. The directory must not already hold params (orbax refuses
    to overwrite a finished checkpoint).
    """
    import orbax.checkpoint as ocp
    directory = os.path.abspath(os.fspath(directory))
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, PARAMS_SUBDIR)
    if os.path.exists(target):
        raise FileExistsError(f"{target} already exists; choose a new output directory")
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(target, params)
    checkpointer.wait_until_finished()
    with open(os.path.join(directory, OPTIONS_FILE), "w") as f:
        json.dump(_jsonable(dict(options)), f, indent=1, sort_keys=True)
    return directory


def load_params(directory) -> tuple[dict, dict]:
    """Reads what `save_params` wrote: (params as nested dict of numpy arrays, options dict)."""
    import orbax.checkpoint as ocp
    directory = os.path.abspath(os.fspath(directory))
    target = os.path.join(directory, PARAMS_SUBDIR)
    options_path = os.path.join(directory, OPTIONS_FILE)
    if not (os.path.isdir(target) and os.path.isfile(options_path)):
        raise FileNotFoundError(f"{directory}: not a converted-params directory (expected "
                                f"{PARAMS_SUBDIR}/ and {OPTIONS_FILE})")
    with open(options_path) as f:
        options = json.load(f)
    params = ocp.StandardCheckpointer().restore(target)
    return params, options
