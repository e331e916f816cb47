r"""Compiled train-step time, images/s and MFU for the full PITI base model or the demo model.

    python -m benchmarks.train_step --model=demo --batch=8
    python -m benchmarks.train_step --model=piti-base --batch=128 --dtype=bfloat16 --remat

FLOPs come from the compiled step's cost_analysis(); MFU = FLOPs/s over the device's peak
(table below, dense bf16; float32 runs are compared with the same number). CPU has no
meaningful peak: MFU is reported as n/a.
"""
from __future__ import annotations

import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_enum("model", "demo", ["demo", "piti-base", "glide-tiny"], "Which model.")
flags.DEFINE_integer("batch", 8, "Global batch size.")
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Compute dtype.")
flags.DEFINE_bool("remat", False, "Per-block rematerialisation (model option use_checkpoint).")
flags.DEFINE_integer("steps", 5, "Timed steps (after one warm-up step).")
flags.DEFINE_integer("fsdp", 1, "fsdp mesh axis size.")

# Dense bf16 peak FLOP/s per device.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "TPU v4": 275e12,
              "TPU v5 lite": 197e12, "TPU v5e": 197e12, "TPU v5p": 459e12, "TPU v6 lite": 918e12}


def peak_flops(device) -> float | None:
    kind = device.device_kind
    for name, flops in PEAK_FLOPS.items():
        if name.lower() in kind.lower():
            return flops
    return None


def make_config():
    import pathlib
    import importlib.util
    root = pathlib.Path(__file__).resolve().parents[1]
    name, arg = {"demo": ("demo", "stage2"), "piti-base": ("coco_stuff", "stage2"),
                 "glide-tiny": ("glide_base", "tiny")}[FLAGS.model]
    spec = importlib.util.spec_from_file_location("cfg", root / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(arg)
    from glide_jax.train import config_lib
    config = config_lib.resolve(config, config_lib.stage_name(config, arg) if name != "glide_base"
                                else "")
    with config.unlocked():
        config.train.batch_size = FLAGS.batch
        config.model.dtype = FLAGS.dtype
        config.model.use_checkpoint = FLAGS.remat
        config.mesh.fsdp = FLAGS.fsdp
        config.data.name = "synthetic"
        config.init.torch_checkpoint = ""
    return config


def fake_batch(setup, batch_size):
    import numpy as np
    from glide_jax.parallel import global_batch
    opts = setup.options
    size = opts["image_size"]
    rng = np.random.default_rng(0)
    batch = {"image": rng.uniform(-1, 1, (batch_size, size, size, 3)).astype(np.float32)}
    if opts["family"] == "piti":
        from glide_jax.models.options import n_class
        batch["ref"] = rng.uniform(-1, 1, (batch_size, 256, 256, n_class(opts))).astype(
            np.float32)
    else:
        batch["tokens"] = np.zeros((batch_size, opts["text_ctx"]), np.int32)
        batch["mask"] = np.ones((batch_size, opts["text_ctx"]), bool)
    if opts["super_res"]:
        low = size // 4
        batch["low_res"] = np.zeros((batch_size, low, low, 3), np.float32)
    return global_batch(batch, setup.mesh)


def main(argv):
    del argv
    import jax
    from glide_jax import models
    from glide_jax.train.setup import build, restore_target
    config = make_config()
    setup = build(config)
    abstract = restore_target(setup)
    batch = fake_batch(setup, FLAGS.batch)
    t0 = time.perf_counter()
    compiled = setup.train_step.lower(abstract, batch).compile()
    compile_s = time.perf_counter() - t0
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", 0.0)) if cost else 0.0
    # A random state of the right shapes (no init compile): zeros are fine for timing.
    state = jax.tree.map(lambda a: jax.numpy.zeros(a.shape, a.dtype, device=a.sharding),
                         abstract)
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    t0 = time.perf_counter()
    for _ in range(FLAGS.steps):
        state, metrics = compiled(state, batch)
    jax.block_until_ready((state, metrics))
    step_s = (time.perf_counter() - t0) / FLAGS.steps
    devices = jax.devices()
    peak = peak_flops(devices[0])
    params = models.count_params(setup.abstract_state.params)
    print(f"model={FLAGS.model} params={params / 1e6:.1f}M batch={FLAGS.batch} "
          f"dtype={FLAGS.dtype} remat={FLAGS.remat} devices={len(devices)}x"
          f"{devices[0].device_kind}")
    print(f"compile {compile_s:.1f}s  step {step_s * 1e3:.1f} ms  "
          f"{FLAGS.batch / step_s:.2f} images/s  {flops / 1e9:.1f} GFLOP/step (compiled, per "
          f"device program)  {flops / step_s / 1e12:.3f} TFLOP/s")
    if peak is None:
        print(f"MFU n/a (no peak FLOP/s known for {devices[0].device_kind!r})")
    else:
        # cost_analysis counts one device's program; compare against one device's peak.
        print(f"MFU {flops / step_s / peak * 100:.1f}% of {peak / 1e12:.0f} TFLOP/s bf16 peak")


if __name__ == "__main__":
    app.run(main)
