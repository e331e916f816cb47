r"""Entry point: `python -m glide_jax.main --config=configs/X.py[:arg] --workdir=DIR [--mode=...]`.

    --mode=train   (default) train every phase of the config, resuming from DIR
    --mode=eval    validation losses of DIR's latest checkpoint (workdir/eval/step_N.json)
    --mode=sample  sample from DIR's checkpoint or converted weights (config.sample)

Config overrides: `--config.optim.learning_rate=2e-5`; a PITI stage: `--config=configs/coco_stuff.py:stage2`
or `--config.stage=2`. Multi-host: jax.distributed.initialize() is automatic on TPU VMs and under
SLURM; elsewhere pass --coordinator_address, --num_processes and --process_id.
"""
from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Training config file (get_config()).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and samples.")
flags.DEFINE_enum("mode", "train", ["train", "eval", "sample"], "What to do.")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process "
                    "runs outside TPU VMs / SLURM).")
flags.DEFINE_integer("num_processes", None, "Number of processes (with coordinator_address).")
flags.DEFINE_integer("process_id", None, "This process's index (with coordinator_address).")
flags.DEFINE_enum("cpu_collectives", "gloo", ["gloo", "mpi", "none"],
                  "Cross-process collectives on CPU (multi-process CPU runs).")
flags.mark_flags_as_required(["config", "workdir"])


def initialize_distributed() -> None:
    """jax.distributed.initialize with explicit flags, or automatically on TPU pods / SLURM."""
    import os
    import jax
    explicit = FLAGS.coordinator_address is not None
    if explicit or os.environ.get("SLURM_NTASKS", "1") not in ("", "1") or \
            os.environ.get("TPU_WORKER_HOSTNAMES", "").count(",") > 0:
        if FLAGS.cpu_collectives != "none":
            jax.config.update("jax_cpu_collectives_implementation", FLAGS.cpu_collectives)
        if explicit:
            jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                                       FLAGS.process_id)
        else:
            jax.distributed.initialize()
    logging.info("process %d of %d; %d local / %d global devices (%s)", jax.process_index(),
                 jax.process_count(), jax.local_device_count(), jax.device_count(),
                 jax.devices()[0].platform)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from glide_jax.train import config_lib, train
    config = FLAGS.config
    overrides = config_flags.get_override_values(FLAGS["config"])
    # Every phase is resolved and validated before anything runs.
    try:
        phases = train.resolve_phases(config, FLAGS.workdir, overrides)
    except config_lib.ConfigError as e:
        sys.exit(f"config error: {e}")
    initialize_distributed()
    if FLAGS.mode == "sample":
        from glide_jax.pipelines import sample_mode
        phase, workdir = phases[-1]
        sample_mode.run(phase, workdir)
        return
    if FLAGS.mode == "eval":
        from glide_jax.train import evaluate
        phase, workdir = phases[-1]
        evaluate.run(phase, workdir)
        return
    try:
        train.train_and_evaluate(config, FLAGS.workdir, overrides)
    except train.Preempted as e:
        logging.warning("%s", e)
        sys.exit(143)
    except train.NonFiniteLossError as e:
        logging.error("%s", e)
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    app.run(main)
