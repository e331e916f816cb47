r"""Images/s of the PITI sampling pipeline (guided base 64x64 + upsampler 256x256).

    python benchmarks/sample.py                         # full-size models, random weights
    python benchmarks/sample.py --batch_sizes=8,32 --samplers=ancestral,ddim --steps=100
    python benchmarks/sample.py --tiny                  # tiny models on CPU

Weights are random (speed does not depend on them); the batch is sharded over every device.
Compile time (first call per shape) is printed apart from the timed runs.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("batch_sizes", ["1", "8"], "Global batch sizes.")
flags.DEFINE_list("samplers", ["ancestral", "ddim"], "Base-stage samplers.")
flags.DEFINE_string("steps", "100", "Base respacing (PITI: 250 or 100).")
flags.DEFINE_string("upsample_steps", "fast27", "Upsampler respacing.")
flags.DEFINE_float("guidance_scale", 1.4, "Classifier-free guidance scale.")
flags.DEFINE_string("mode", "mask", "PITI model kind: mask or sketch.")
flags.DEFINE_string("dtype", "bfloat16", "Compute dtype of the full-size models.")
flags.DEFINE_integer("repeats", 2, "Timed runs per configuration.")
flags.DEFINE_bool("tiny", False, "Tiny models (CPU smoke run); steps default to 4 / 2.")


def build_pipeline():
    from glide_jax.models import PRESETS
    from glide_jax.pipelines import PITIPipeline
    from glide_jax.pipelines.tiny import random_params, tiny_piti_pipeline
    if FLAGS.tiny:
        return tiny_piti_pipeline(FLAGS.mode)
    stages = []
    for i, stage in enumerate(("base", "upsample")):
        options = dict(PRESETS[f"piti-{stage}-{FLAGS.mode}"], dtype=FLAGS.dtype, dropout=0.0)
        stages.append((random_params(options, i), options))
    return PITIPipeline(*stages)


def main(argv):
    del argv
    import jax
    import numpy as np
    steps = FLAGS.steps if not FLAGS.tiny or FLAGS["steps"].present else "4"
    upsample_steps = (FLAGS.upsample_steps if not FLAGS.tiny or FLAGS["upsample_steps"].present
                      else "2")
    start = time.perf_counter()
    pipe = build_pipeline()
    print(f"devices: {jax.device_count()} x {jax.devices()[0].device_kind}; "
          f"{'tiny' if FLAGS.tiny else 'full-size'} PITI-{FLAGS.mode}, built in "
          f"{time.perf_counter() - start:.1f}s; base {steps} steps (guidance "
          f"{FLAGS.guidance_scale}), upsampler {upsample_steps}")
    print(f"{'sampler':>10} {'batch':>6} {'compile_s':>10} {'s/batch':>9} {'images/s':>9}")
    for sampler in FLAGS.samplers:
        for batch_size in map(int, FLAGS.batch_sizes):
            ref = np.ones((batch_size, 256, 256, pipe.channels), np.float32)
            ref[:, 64:192, 64:192] = -0.5
            kwargs = dict(sampler=sampler, steps=steps, upsample_steps=upsample_steps,
                          guidance_scale=FLAGS.guidance_scale)
            before = pipe.timings
            pipe(ref, seed=0, **kwargs)  # compiles (once per shape and settings) and runs
            compile_s = pipe.timings.compile_s - before.compile_s
            start = time.perf_counter()
            for r in range(FLAGS.repeats):
                pipe(ref, seed=r + 1, **kwargs)
            per_batch = (time.perf_counter() - start) / FLAGS.repeats
            print(f"{sampler:>10} {batch_size:>6} {compile_s:>10.1f} {per_batch:>9.2f} "
                  f"{batch_size / per_batch:>9.3f}", flush=True)


if __name__ == "__main__":
    app.run(main)
