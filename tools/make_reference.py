"""Reference outputs of the official GLIDE and PITI code over their option space.

    python tools/make_reference.py --glide=PATH/glide-text2im --piti=PATH/PITI \
        --out=tests/data/reference

Imports the official code from checkouts of openai/glide-text2im and PITI-Synthesis/PITI (given by
path; nothing of theirs is copied into this repository) and writes, with torch on the CPU:

  models.json.gz, models.npz   a grid of GLIDE and PITI configurations (tools/ref_models.py), each
                               built by the official constructor with the fixtures' numpy recipe
                               weights: options, state-dict layout and parameter count, the
                               input recipe's digests, and the float64 truth of the model output and
                               encoder outputs, with how close the official float32 run gets
  layouts.json.gz              state-dict layouts of random valid option dicts (meta device)
  diffusion.json.gz, .npz      PITI's and GLIDE's diffusion over variance / mean / loss types,
                               schedules, step counts and respacings (tools/ref_diffusion.py)

The float64 truth is the official code run with model.double() and its float32 islands lifted
(GroupNorm32, LayerNorm, softmax, _extract_into_tensor and timestep casts through Tensor.float(),
the timestep embedding's frequency table). Not imported by glide_jax or its tests.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ref_common import file_sha16, git_commit, import_official  # noqa: E402

SOURCE_FILES = {
    "glide": ("glide_text2im/unet.py", "glide_text2im/nn.py", "glide_text2im/xf.py",
              "glide_text2im/text2im_model.py", "glide_text2im/model_creation.py",
              "glide_text2im/gaussian_diffusion.py", "glide_text2im/respace.py"),
    "piti": ("pretrained_diffusion/unet.py", "pretrained_diffusion/nn.py",
             "pretrained_diffusion/xf.py", "pretrained_diffusion/text2im_model.py",
             "pretrained_diffusion/script_util.py", "pretrained_diffusion/gaussian_diffusion.py",
             "pretrained_diffusion/respace.py", "pretrained_diffusion/losses.py"),
}


def _provenance(args) -> dict:
    import torch
    paths = {"glide": args.glide, "piti": args.piti}
    return {
        "generator": "tools/make_reference.py",
        "command": " ".join(["python"] + sys.argv),
        "torch": torch.__version__, "numpy": np.__version__,
        "sources": {fam: {"repo": repo, "commit": git_commit(paths[fam]),
                          "files_sha16": {f: file_sha16(os.path.join(paths[fam], f))
                                          for f in SOURCE_FILES[fam]}}
                    for fam, repo in (("glide", "openai/glide-text2im"),
                                      ("piti", "PITI-Synthesis/PITI"))},
        "made": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _write_json(path, obj):
    with gzip.open(path, "wt") as f:
        json.dump(obj, f, separators=(",", ":"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--glide", required=True, help="checkout of openai/glide-text2im")
    parser.add_argument("--piti", required=True, help="checkout of PITI-Synthesis/PITI")
    parser.add_argument("--out", required=True)
    parser.add_argument("--parts", default="models,layouts,diffusion")
    parser.add_argument("--num_random_layouts", type=int, default=40)
    args = parser.parse_args(argv)
    import_official(os.path.abspath(args.glide), os.path.abspath(args.piti))
    import torch
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    os.makedirs(args.out, exist_ok=True)
    provenance = _provenance(args)
    parts = set(args.parts.split(","))
    if "models" in parts:
        from ref_models import model_references
        print("models:", flush=True)
        records, arrays = model_references()
        _write_json(os.path.join(args.out, "models.json.gz"),
                    {"provenance": provenance, "configs": records})
        np.savez_compressed(os.path.join(args.out, "models.npz"), **arrays)
    if "layouts" in parts:
        from ref_models import random_layouts
        print("random layouts:", flush=True)
        records = random_layouts(args.num_random_layouts)
        _write_json(os.path.join(args.out, "layouts.json.gz"),
                    {"provenance": provenance, "configs": records})
        print(f"  {len(records)} layouts", flush=True)
    if "diffusion" in parts:
        from ref_diffusion import diffusion_references
        print("diffusion:", flush=True)
        records, arrays = diffusion_references()
        _write_json(os.path.join(args.out, "diffusion.json.gz"),
                    {"provenance": provenance, "cases": records})
        np.savez_compressed(os.path.join(args.out, "diffusion.npz"), **arrays)


if __name__ == "__main__":
    main()
