"""The loop: end to end through main, exact resume, non-finite losses, SIGTERM and crashes."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from glide_jax.data import pipeline as input_pipeline
from glide_jax import saved_params
from glide_jax.train import config_lib, evaluate, train
from tests.train.conftest import one_device, ROOT, run_main, tiny_config


def _state(workdir, step):
    with saved_params.reader(str(workdir)) as manager:
        return saved_params.numpy_state(manager, step)


def test_main_end_to_end_writes_checkpoint_events_grid_and_evaluates(tmp_path):
    result = run_main(["--config=configs/glide_base.py:tiny", f"--workdir={tmp_path}",
                       "--config.train.num_steps=4", "--config.checkpoint.every=2",
                       "--config.train.log_every=2"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert saved_params.latest_step(str(tmp_path)) == 4
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path))
    assert (tmp_path / "samples" / "train_final.png").exists()
    assert "train/loss_q0" in result.stderr and "images_per_sec" in result.stderr
    params, options = saved_params.load_for_sampling(str(tmp_path))
    assert options["image_size"] == 16 and "output_blocks_0" in params

    config = config_lib.resolve(tiny_config())
    results = evaluate.run(config, str(tmp_path))
    assert {"eval_ema/loss", "eval_ema/mse", "eval_ema/vb", "eval_params/loss"} <= set(results)
    written = json.loads((tmp_path / "eval" / "step_000004.json").read_text())
    assert written["step"] == 4 and np.isfinite(written["eval_ema/loss"])


def test_resume_is_bit_exact(tmp_path):
    def config(steps):
        c = tiny_config(schedule_sampler="loss-second-moment", num_steps=steps, log_every=2)
        c.checkpoint.every = 2
        return config_lib.resolve(c)

    train.train_phase(config(6), str(tmp_path / "straight"), one_device())
    train.train_phase(config(3), str(tmp_path / "resumed"), one_device())
    assert saved_params.latest_step(str(tmp_path / "resumed")) == 3
    train.train_phase(config(6), str(tmp_path / "resumed"), one_device())
    a, b = _state(tmp_path / "straight", 6), _state(tmp_path / "resumed", 6)
    flat_a, flat_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(flat_a) == len(flat_b) and int(a["step"]) == 6
    for x, y in zip(flat_a, flat_b):
        np.testing.assert_array_equal(x, y)
    assert int(np.sum(a["sampler_state"]["counts"])) > 0


class _NaNAt:
    """Wraps a train iterator; the batch of `step` (1-based) gets a NaN image."""

    def __init__(self, inner, step):
        self.inner, self.step, self.count = inner, step, 0

    def __iter__(self):
        return self

    def __next__(self):
        batch = dict(next(self.inner))
        self.count += 1
        if self.count == self.step:
            batch["image"] = np.full_like(batch["image"], np.nan)
        return batch

    def get_state(self):
        return json.dumps({"inner": self.inner.get_state(), "count": self.count}).encode()

    def set_state(self, state):
        state = json.loads(state)
        self.inner.set_state(state["inner"])
        self.count = state["count"]


@pytest.fixture
def nan_at_step_5(monkeypatch):
    real = input_pipeline.create_train_iterator
    monkeypatch.setattr(input_pipeline, "create_train_iterator",
                        lambda *a, **k: _NaNAt(real(*a, **k), 5))


def test_nan_stops_with_message_and_keeps_last_good_checkpoint(tmp_path, nan_at_step_5):
    c = tiny_config(num_steps=8, nan_policy="stop")
    c.checkpoint.every = 2
    with pytest.raises(train.NonFiniteLossError, match=r"at step 5 .*last good checkpoint: "
                                                       r"step 4"):
        train.train_phase(config_lib.resolve(c), str(tmp_path), one_device())
    assert saved_params.latest_step(str(tmp_path)) == 4
    state = _state(tmp_path, 4)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state["params"]))


def test_nan_skip_policy_skips_the_update(tmp_path, nan_at_step_5):
    c = tiny_config(num_steps=6, nan_policy="skip")
    c.checkpoint.every = 6
    train.train_phase(config_lib.resolve(c), str(tmp_path), one_device())
    state = _state(tmp_path, 6)
    assert int(state["step"]) == 6
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state["params"]))


@pytest.fixture
def started():
    """Processes a test starts; any still running at teardown (a failed or timed-out test) are
    killed."""
    procs = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _start(started, workdir, extra=()):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
               JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "glide_jax.main", "--config=configs/glide_base.py:tiny",
         f"--workdir={workdir}", "--config.train.num_steps=100000", "--config.train.log_every=1",
         "--config.sample_grid.num_images=0", *extra],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started.append(proc)
    return proc


def _wait_for(proc, needle, count=1, timeout=240):
    deadline, seen, lines = time.time() + timeout, 0, []
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        seen += needle in line
        if seen >= count:
            return
    proc.kill()
    raise AssertionError(f"never saw {needle!r} x{count}:\n" + "".join(lines[-30:]))


def test_crash_during_saves_and_sigterm_leave_restorable_checkpoints(tmp_path, started):
    # SIGKILL while asynchronous saves run every step: the latest finished checkpoint loads.
    proc = _start(started, tmp_path, ["--config.checkpoint.every=1", "--config.checkpoint.keep=2"])
    _wait_for(proc, "Finished saving checkpoint", count=3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    crashed_at = saved_params.latest_step(str(tmp_path))
    assert crashed_at is not None and crashed_at >= 3
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(
        saved_params.load_params(str(tmp_path), "params")))

    # Resume from it, then SIGTERM: a checkpoint at the current step, exit status 143.
    proc = _start(started, tmp_path, ["--config.checkpoint.every=100000"])
    _wait_for(proc, f"resuming from step {crashed_at}")
    _wait_for(proc, "train/loss", count=2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    stopped_at = saved_params.latest_step(str(tmp_path))
    assert stopped_at > crashed_at
    assert int(_state(tmp_path, stopped_at)["step"]) == stopped_at
