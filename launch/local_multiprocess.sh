#!/usr/bin/env bash
# Start N processes of `python -m glide_jax.main` on ONE machine, wired together with
# jax.distributed's explicit coordinator flags (--coordinator_address=localhost:PORT
# --num_processes=N --process_id=i). This script only starts, watches and stops processes:
# every collective is JAX's own (NCCL on GPU, gloo on CPU via main.py's --cpu_collectives).
#
# Usage:
#   launch/local_multiprocess.sh [options] CONFIG WORKDIR [extra glide_jax.main flags...]
#
# Options (before CONFIG):
#   -n, --num-processes N     processes to start (default 2)
#   -p, --port PORT           coordinator port on localhost (default: a free port)
#   --cpu [D]                 CPU test mode: JAX_PLATFORMS=cpu and D fake CPU devices per
#                             process (default D=1); no GPU is touched
#   --gpus LIST               comma-separated GPU ids to split evenly between the processes
#                             (default: every GPU `nvidia-smi -L` lists); process i gets its
#                             own contiguous block through CUDA_VISIBLE_DEVICES
#   --no-pin                  do not set CUDA_VISIBLE_DEVICES (every process sees every GPU;
#                             only for setups that pin devices some other way)
#   --log-dir DIR             per-process logs DIR/proc_<i>.log (default /tmp/glide_jax_lmp.<pid>)
#   --kill-grace SECONDS      after one process fails, how long the others get to exit after
#                             SIGTERM before SIGKILL (default 30)
#   --python PY               interpreter (default: $PYTHON or python)
#   -h, --help                this text
#
# Examples:
#   # 2 CPU processes x 2 fake devices each (a 4-device mesh): multi-process smoke test
#   launch/local_multiprocess.sh -n 2 --cpu 2 configs/demo.py:pretrain /tmp/lmp \
#       --config.train.num_steps=4 --config.checkpoint.every=2 --config.sample_grid.num_images=0
#   # 8 GPUs as 4 processes x 2 GPUs
#   launch/local_multiprocess.sh -n 4 configs/coco_stuff.py:stage1 /shared/runs/cs1
#
# Exit status: 0 when every process exits 0; otherwise the status of the first process that
# failed (143 when training stopped on SIGTERM after saving a checkpoint). Ctrl-C / SIGTERM to
# this script is forwarded to every process as SIGTERM (so they write a checkpoint and stop).
set -euo pipefail

usage() {
  sed -n '2,/^set -euo pipefail/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

die() { echo "local_multiprocess.sh: $*" >&2; exit 2; }

num_procs=2
port=""
cpu_mode=0
cpu_devices=1
gpu_list=""
pin=1
log_dir=""
kill_grace=30
python_bin="${PYTHON:-python}"

while [[ $# -gt 0 ]]; do
  case "$1" in
    -n|--num-processes) [[ $# -ge 2 ]] || die "$1 needs a value"; num_procs="$2"; shift 2 ;;
    -p|--port) [[ $# -ge 2 ]] || die "$1 needs a value"; port="$2"; shift 2 ;;
    --cpu)
      cpu_mode=1; shift
      if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then cpu_devices="$1"; shift; fi ;;
    --gpus) [[ $# -ge 2 ]] || die "$1 needs a value"; gpu_list="$2"; shift 2 ;;
    --no-pin) pin=0; shift ;;
    --log-dir) [[ $# -ge 2 ]] || die "$1 needs a value"; log_dir="$2"; shift 2 ;;
    --kill-grace) [[ $# -ge 2 ]] || die "$1 needs a value"; kill_grace="$2"; shift 2 ;;
    --python) [[ $# -ge 2 ]] || die "$1 needs a value"; python_bin="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (options go before CONFIG; see --help)" ;;
    *) break ;;
  esac
done

if [[ $# -lt 2 ]]; then
  usage >&2
  exit 2
fi
config="$1"
workdir="$2"
shift 2
extra=("$@")

[[ "$num_procs" =~ ^[1-9][0-9]*$ ]] || die "--num-processes must be a positive integer"
[[ "$cpu_devices" =~ ^[1-9][0-9]*$ ]] || die "--cpu D must be a positive integer"
[[ "$kill_grace" =~ ^[0-9]+$ ]] || die "--kill-grace must be a non-negative integer"
for a in "${extra[@]+"${extra[@]}"}"; do
  case "$a" in
    --coordinator_address*|--num_processes*|--process_id*)
      die "$a: this script sets the coordinator flags itself" ;;
  esac
done

if [[ -z "$port" ]]; then
  port="$("$python_bin" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi
[[ "$port" =~ ^[0-9]+$ ]] || die "bad port $port"

# Per-process device assignment.
declare -a proc_gpus=()
if [[ $cpu_mode -eq 0 && $pin -eq 1 ]]; then
  if [[ -z "$gpu_list" ]]; then
    if command -v nvidia-smi >/dev/null 2>&1; then
      n_gpu="$(nvidia-smi -L | grep -c '^GPU ' || true)"
      [[ "$n_gpu" -gt 0 ]] || die "nvidia-smi lists no GPU; use --cpu for a CPU run"
      gpu_list="$(seq -s, 0 $((n_gpu - 1)))"
    else
      die "no nvidia-smi: pass --gpus LIST, or --cpu [D] for a CPU test run"
    fi
  fi
  IFS=, read -r -a gpus <<<"$gpu_list"
  n_gpu=${#gpus[@]}
  if (( n_gpu % num_procs != 0 )); then
    die "${n_gpu} GPUs (${gpu_list}) cannot be split evenly over ${num_procs} processes"
  fi
  per=$((n_gpu / num_procs))
  for ((i = 0; i < num_procs; i++)); do
    block=("${gpus[@]:$((i * per)):$per}")
    proc_gpus[i]="$(IFS=,; echo "${block[*]}")"
  done
fi

log_dir="${log_dir:-/tmp/glide_jax_lmp.$$}"
mkdir -p "$log_dir"

declare -a pids=()
declare -a alive=()

terminate_all() {  # $1: signal
  local i
  for i in "${!pids[@]}"; do
    if [[ "${alive[i]}" == 1 ]] && kill -0 "${pids[i]}" 2>/dev/null; then
      kill -s "$1" "${pids[i]}" 2>/dev/null || true
    fi
  done
}

stop_requested=0
# shellcheck disable=SC2317  # invoked by the trap below
on_signal() {
  echo "local_multiprocess.sh: signal received: sending SIGTERM to all processes" >&2
  stop_requested=1
  terminate_all TERM
}
trap on_signal INT TERM

echo "local_multiprocess.sh: ${num_procs} processes, coordinator localhost:${port}, logs in ${log_dir}" >&2
for ((i = 0; i < num_procs; i++)); do
  env_args=()
  if [[ $cpu_mode -eq 1 ]]; then
    env_args+=(JAX_PLATFORMS=cpu CUDA_VISIBLE_DEVICES=
               "XLA_FLAGS=${XLA_FLAGS:+$XLA_FLAGS }--xla_force_host_platform_device_count=${cpu_devices}")
    where="cpu x${cpu_devices}"
  elif [[ $pin -eq 1 ]]; then
    env_args+=("CUDA_VISIBLE_DEVICES=${proc_gpus[i]}")
    where="GPUs ${proc_gpus[i]}"
  else
    where="all visible devices"
  fi
  cmd=(env "${env_args[@]+"${env_args[@]}"}" "$python_bin" -m glide_jax.main
       "--config=${config}" "--workdir=${workdir}"
       "--coordinator_address=localhost:${port}" "--num_processes=${num_procs}"
       "--process_id=${i}" "${extra[@]+"${extra[@]}"}")
  log="${log_dir}/proc_${i}.log"
  echo "  [${i}] ${where}: ${cmd[*]} > ${log}" >&2
  # setsid: the processes (and the tee) leave the terminal's process group, so Ctrl-C reaches
  # only this script, which turns it into one SIGTERM per process (checkpoint, then exit).
  if [[ $i -eq 0 ]]; then
    # Process 0's output also goes to this terminal.
    setsid "${cmd[@]}" > >(exec setsid tee "$log") 2>&1 &
  else
    setsid "${cmd[@]}" >"$log" 2>&1 &
  fi
  pids[i]=$!
  alive[i]=1
done

# Watch: the first non-zero exit stops the rest (SIGTERM, then SIGKILL after the grace period).
status=0
failed_at=""
remaining=$num_procs
while (( remaining > 0 )); do
  for i in "${!pids[@]}"; do
    [[ "${alive[i]}" == 1 ]] || continue
    if ! kill -0 "${pids[i]}" 2>/dev/null; then
      rc=0
      wait "${pids[i]}" || rc=$?
      alive[i]=0
      remaining=$((remaining - 1))
      echo "local_multiprocess.sh: process ${i} (pid ${pids[i]}) exited with status ${rc}" >&2
      if [[ $rc -ne 0 && -z "$failed_at" ]]; then
        status=$rc
        failed_at=$SECONDS
        if [[ $i -ne 0 ]]; then
          echo "---- last lines of ${log_dir}/proc_${i}.log ----" >&2
          tail -n 30 "${log_dir}/proc_${i}.log" >&2 || true
          echo "----" >&2
        fi
        if [[ $stop_requested -eq 0 ]]; then
          echo "local_multiprocess.sh: stopping the other processes" >&2
          terminate_all TERM
        fi
      fi
    fi
  done
  if [[ -n "$failed_at" ]] && (( remaining > 0 && SECONDS - failed_at >= kill_grace )); then
    echo "local_multiprocess.sh: ${kill_grace}s grace over: SIGKILL to the remaining processes" >&2
    terminate_all KILL
    failed_at=$((SECONDS - kill_grace))  # keep killing anything still alive
  fi
  if (( remaining > 0 )); then sleep 1 || true; fi
done
wait || true  # the tee of process 0
exit "$status"
