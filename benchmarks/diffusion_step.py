"""Time one compiled sampling step and a full compiled loop of a tiny GLIDE model.

    python benchmarks/diffusion_step.py [--steps 27] [--batch 4] [--sampler ancestral|ddim|dpm]

Uses the tiny GLIDE text-to-image network of `glide_jax.pipelines.tiny` (16x16, 32 channels,
random weights) with classifier-free guidance (one 2B network call per step) on the current
default device.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout
from glide_jax import diffusion  # noqa: E402
from glide_jax.models import create_model, example_inputs  # noqa: E402
from glide_jax.pipelines.tiny import tiny_model  # noqa: E402

LOOPS = {"ancestral": diffusion.p_sample_loop, "ddim": diffusion.ddim_sample_loop,
         "dpm": diffusion.dpm_solver_sample_loop}


def _time(fn, *args, repeats: int):
    jax.block_until_ready(fn(*args))  # compile and warm up
    start = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(fn(*args))
    return (time.perf_counter() - start) / repeats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="27", help="timestep_respacing of the process")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--sampler", choices=sorted(LOOPS), default="ancestral")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    params, options = tiny_model("glide-base")
    model = create_model(options)
    inputs = example_inputs(options, batch_size=args.batch)
    size, ctx = options["image_size"], options["text_ctx"]
    shape = (args.batch, size, size, 3)
    process = diffusion.create_gaussian_diffusion(
        learn_sigma=True, noise_schedule="squaredcos_cap_v2", timestep_respacing=args.steps)
    tokens = jnp.arange(args.batch * ctx, dtype=jnp.int32).reshape(args.batch, ctx) % (
        options["n_vocab"] - 1)
    cond = {"tokens": tokens, "mask": jnp.ones_like(inputs["mask"])}
    uncond = {"tokens": inputs["tokens"], "mask": inputs["mask"]}

    def model_fn(params):
        apply = lambda x, t, **kw: model.apply({"params": params}, x, t, **kw)  # noqa: E731
        return diffusion.classifier_free_guidance(apply, cond, uncond, scale=3.0)

    @jax.jit
    def one_step(params, x, key):
        t = jnp.full((args.batch,), process.num_timesteps - 1, jnp.int32)
        out = model_fn(params)(x, process.model_timesteps(t))
        return process.p_sample(out, x, t, jax.random.normal(key, x.shape))["sample"]

    @jax.jit
    def full_loop(params, key):
        return LOOPS[args.sampler](process, model_fn(params), shape, key)

    key = jax.random.PRNGKey(1)
    x = jax.random.normal(key, shape)
    step_s = _time(one_step, params, x, key, repeats=args.repeats * 4)
    loop_s = _time(full_loop, params, key, repeats=args.repeats)
    device = jax.devices()[0]
    print(f"device: {device.platform} ({device.device_kind}); tiny GLIDE 16x16, batch "
          f"{args.batch} (CFG: network batch {2 * args.batch})")
    print(f"one compiled p_sample step: {step_s * 1e3:.2f} ms")
    print(f"full compiled {args.sampler} loop, {process.num_timesteps} steps: "
          f"{loop_s * 1e3:.1f} ms ({loop_s / process.num_timesteps * 1e3:.2f} ms/step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
