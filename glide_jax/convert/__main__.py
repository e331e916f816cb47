"""python -m glide_jax.convert: official PyTorch checkpoints <-> Flax params.

  to-flax CKPT --model=PRESET --out DIR [--part=full|encoder|decoder|glide-decoder]
  to-torch DIR --out CKPT.pt|CKPT.safetensors [--part=full|encoder|decoder]
  presets
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from glide_jax.convert import checkpoint_io, convert, params_io

_CLI_PARTS = ("full", "encoder", "decoder", "glide-decoder")


def _presets():
    from glide_jax.models.options import PRESETS
    return PRESETS


def _options(model: str) -> dict:
    """A preset name, or a JSON file of options (missing keys take the family defaults)."""
    from glide_jax.models.options import resolve_options
    presets = _presets()
    if model in presets:
        return dict(presets[model])
    if model.endswith(".json") and os.path.isfile(model):
        with open(model) as f:
            return resolve_options(json.load(f))
    raise SystemExit(f"unknown preset {model!r}; choose one of {', '.join(presets)} or give an "
                     "options .json file")


def _to_flax(args) -> str:
    options = _options(args.model)
    state = checkpoint_io.load_state_dict(args.ckpt)
    if args.part == "glide-decoder":
        params, report = convert.glide_to_piti_decoder(state, options)
        extra = f"; {report.summary()}"
    else:
        params, extra = convert.torch_to_flax(state, options, args.part), ""
    out = params_io.save_params(args.out, params, options)
    flat = convert.flatten(params)
    return (f"{args.ckpt}: {len(state)} tensors -> {out} ({len(flat)} params arrays, "
            f"{convert.num_params(flat):,} parameters, part {args.part}){extra}")


def _infer_part(params, options) -> str:
    top = set(convert.unwrap_params(params)[0])
    if options.get("family") != "piti" or {"encoder", "decoder"} <= top:
        return "full"
    return "encoder" if "cnn" in top else "decoder"


def _to_torch(args) -> str:
    params, options = params_io.load_params(args.dir)
    part = args.part or _infer_part(params, options)
    state = convert.flax_to_torch(params, options, part)
    checkpoint_io.save_state_dict(args.out, state)
    return (f"{args.dir}: part {part} -> {args.out} ({len(state)} tensors, "
            f"{convert.num_params(state):,} parameters)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m glide_jax.convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("to-flax", help="PyTorch .pt/.safetensors -> orbax params + options.json")
    p.add_argument("ckpt")
    p.add_argument("--model", required=True,
                   help="option preset (see `presets`) or an options .json file")
    p.add_argument("--out", required=True, help="output directory (must not hold params yet)")
    p.add_argument("--part", default="full", choices=_CLI_PARTS,
                   help="PITI: encoder = stage-1 file without 'encoder.' prefix; glide-decoder = "
                        "initialise the PITI decoder from GLIDE base.pt/upsample.pt")
    p = sub.add_parser("to-torch", help="params directory -> .pt (needs torch) or .safetensors")
    p.add_argument("dir")
    p.add_argument("--out", required=True)
    p.add_argument("--part", default=None, choices=convert.PARTS,
                   help="default: inferred from the params tree")
    sub.add_parser("presets", help="list option presets")
    args = parser.parse_args(argv)
    try:
        if args.command == "presets":
            print("\n".join(_presets()))
        elif args.command == "to-flax":
            print(_to_flax(args))
        else:
            print(_to_torch(args))
    except (checkpoint_io.CheckpointError, convert.ConversionError, FileNotFoundError,
            FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
