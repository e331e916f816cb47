"""Two processes on localhost (jax.distributed + gloo CPU collectives) train and save (in CI: two
steps of the tiny config, about a minute), then resume (-m slow: a second two-process launch)."""
import os
import socket
import subprocess
import sys

import pytest


from glide_jax import saved_params
from tests.train.conftest import ROOT


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_two(workdir, steps):
    port = _free_port()
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen(
        [sys.executable, "-m", "glide_jax.main", "--config=configs/glide_base.py:tiny",
         f"--workdir={workdir}", f"--coordinator_address=localhost:{port}",
         "--num_processes=2", f"--process_id={i}", f"--config.train.num_steps={steps}",
         "--config.checkpoint.every=2", "--config.train.log_every=2",
         "--config.sample_grid.num_images=0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)]
    try:
        outs = [p.communicate(timeout=240)[0] for p in procs]
    finally:  # never leave a process behind (one may wait forever for its peer)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    return outs


def _train_two(workdir):
    outs = _run_two(workdir, 2)
    assert "process 1 of 2; 2 local / 4 global devices" in outs[1]
    assert saved_params.latest_step(str(workdir)) == 2
    assert {"process_0-of-2.json", "process_1-of-2.json"} <= set(
        os.listdir(workdir / "checkpoints" / "2" / "data"))


def test_two_processes_train_and_save(tmp_path):
    _train_two(tmp_path)


@pytest.mark.slow
def test_two_processes_train_save_and_resume(tmp_path):
    _train_two(tmp_path)
    outs = _run_two(tmp_path, 4)
    assert "resuming from step 2" in outs[0] and "resuming from step 2" in outs[1]
    assert saved_params.latest_step(str(tmp_path)) == 4
