#!/usr/bin/env bash
# Cloud TPU VMs (a single host such as v4-8 / v5litepod-8, or a pod slice such as v4-32):
# create the VM, copy or clone the code onto every worker, install, run glide_jax.main on every
# worker at once, and delete the VM. jax.distributed.initialize() needs no flags on TPU VMs.
#
# Usage:
#   launch/tpu_vm.sh create                      create the TPU VM (SPOT=1 / PREEMPTIBLE=1)
#   launch/tpu_vm.sh setup                       copy the code (or git clone $REPO_URL) + install
#   launch/tpu_vm.sh sync                        copy/pull the code again, no reinstall
#   launch/tpu_vm.sh run CONFIG WORKDIR [overrides...]
#                                                run glide_jax.main on all workers (foreground;
#                                                DETACH=1: in the background, logs on each worker)
#   launch/tpu_vm.sh logs [WORKER]               tail the detached run's log (default worker 0)
#   launch/tpu_vm.sh stop                        SIGTERM the detached run (it saves a checkpoint)
#   launch/tpu_vm.sh ssh [WORKER|all] [CMD...]   a shell, or CMD, on worker(s)
#   launch/tpu_vm.sh status                      gcloud describe (state, health, workers)
#   launch/tpu_vm.sh delete                      delete the TPU VM
#
# Settings (environment variables):
#   TPU_NAME          VM name (default glide-jax)
#   ZONE              e.g. us-central2-b (v4), us-west4-a / us-east5-b (v5e)   [required]
#   PROJECT           gcloud project (default: gcloud's configured project)
#   ACCELERATOR_TYPE  v4-8 (1 host) | v4-32 (4 hosts) | v5litepod-8 | v5litepod-32 ... (default v4-8)
#   RUNTIME_VERSION   TPU software version (default from the accelerator: v4 -> tpu-ubuntu2204-base,
#                     v5litepod -> v2-alpha-tpuv5-lite, v5p -> v2-alpha-tpuv5, v6e -> v2-alpha-tpuv6e)
#   SPOT=1            Spot VM (cheap, can be preempted any time)
#   PREEMPTIBLE=1     legacy preemptible VM (v4 and older)
#   REPO_URL          git URL to clone on the workers instead of copying this checkout
#   REPO_REF          branch/tag/commit to check out with REPO_URL (default: the remote default)
#   REMOTE_DIR        code directory on the workers (default glide_jax, i.e. ~/glide_jax)
#   VENV              virtualenv on the workers (default ~/glide_jax_venv)
#   REMOTE_PYTHON     interpreter that creates the venv (default python3; see README pitfalls)
#   DETACH=1          `run` starts training under nohup and returns; see `logs` / `stop`
#   EXTRA_CREATE_FLAGS extra flags for `gcloud compute tpus tpu-vm create` (word-split)
#
# Example (v4-32 pod slice, Spot, checkpoints in a bucket):
#   export ZONE=us-central2-b ACCELERATOR_TYPE=v4-32 TPU_NAME=piti SPOT=1
#   launch/tpu_vm.sh create && launch/tpu_vm.sh setup
#   DETACH=1 launch/tpu_vm.sh run configs/coco_stuff.py:stage1 gs://my-bucket/runs/cs1 \
#       --config.init.torch_checkpoint=/home/me/ckpt/base.pt
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

TPU_NAME="${TPU_NAME:-glide-jax}"
ZONE="${ZONE:-}"
PROJECT="${PROJECT:-}"
ACCELERATOR_TYPE="${ACCELERATOR_TYPE:-v4-8}"
RUNTIME_VERSION="${RUNTIME_VERSION:-}"
SPOT="${SPOT:-0}"
PREEMPTIBLE="${PREEMPTIBLE:-0}"
REPO_URL="${REPO_URL:-}"
REPO_REF="${REPO_REF:-}"
REMOTE_DIR="${REMOTE_DIR:-glide_jax}"
VENV="${VENV:-\$HOME/glide_jax_venv}"  # expanded on the workers
REMOTE_PYTHON="${REMOTE_PYTHON:-python3}"
DETACH="${DETACH:-0}"
EXTRA_CREATE_FLAGS="${EXTRA_CREATE_FLAGS:-}"
LIBTPU_INDEX="https://storage.googleapis.com/jax-releases/libtpu_releases.html"
# shellcheck disable=SC2016  # $HOME is expanded on the workers
REMOTE_LOG_DIR='$HOME/glide_jax_logs'
# shellcheck disable=SC2016
REMOTE_PID_FILE='$HOME/glide_jax_logs/run.pid'

usage() {
  sed -n '2,/^set -euo pipefail/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

die() { echo "tpu_vm.sh: $*" >&2; exit 2; }

need_zone() { [[ -n "$ZONE" ]] || die "set ZONE (e.g. ZONE=us-central2-b for v4)"; }

gcloud_tpu() {  # gcloud compute tpus tpu-vm <args> with zone/project
  local args=(compute tpus tpu-vm "$@" "--zone=$ZONE")
  [[ -n "$PROJECT" ]] && args+=("--project=$PROJECT")
  gcloud "${args[@]}"
}

jax_version() {  # the version setup.py pins (jax==X)
  local v
  v="$(sed -n 's/.*"jax==\([0-9][0-9.]*\)".*/\1/p' "$REPO_ROOT/setup.py" | head -n 1)"
  [[ -n "$v" ]] || die "could not read the jax==X pin from $REPO_ROOT/setup.py"
  echo "$v"
}

default_runtime() {
  case "$ACCELERATOR_TYPE" in
    v5litepod-*|v5e-*) echo "v2-alpha-tpuv5-lite" ;;
    v5p-*) echo "v2-alpha-tpuv5" ;;
    v6e-*) echo "v2-alpha-tpuv6e" ;;
    *) echo "tpu-ubuntu2204-base" ;;
  esac
}

num_workers() {  # number of hosts of the existing VM (1 when it cannot be read)
  local ips
  ips="$(gcloud_tpu describe "$TPU_NAME" --format='value(networkEndpoints[].ipAddress)' 2>/dev/null || true)"
  if [[ -z "$ips" ]]; then echo 1; return; fi
  awk -F'[;,]' '{print NF}' <<<"$ips"
}

ssh_all() {  # run a bash command string on every worker
  gcloud_tpu ssh "$TPU_NAME" --worker=all --command="$1"
}

cmd_create() {
  need_zone
  local args=(create "$TPU_NAME" "--accelerator-type=$ACCELERATOR_TYPE"
              "--version=${RUNTIME_VERSION:-$(default_runtime)}")
  [[ "$SPOT" == 1 ]] && args+=(--spot)
  [[ "$PREEMPTIBLE" == 1 ]] && args+=(--preemptible)
  if [[ -n "$EXTRA_CREATE_FLAGS" ]]; then
    local extra
    read -r -a extra <<<"$EXTRA_CREATE_FLAGS"
    args+=("${extra[@]}")
  fi
  echo "+ gcloud compute tpus tpu-vm ${args[*]} --zone=$ZONE" >&2
  gcloud_tpu "${args[@]}"
}

cmd_sync() {
  need_zone
  if [[ -n "$REPO_URL" ]]; then
    local q_url q_dir q_ref
    q_url="$(printf '%q' "$REPO_URL")"; q_dir="$(printf '%q' "$REMOTE_DIR")"
    q_ref="$(printf '%q' "$REPO_REF")"
    ssh_all "set -euo pipefail
      if [ -d $q_dir/.git ]; then git -C $q_dir fetch --all --tags --quiet
      else git clone --quiet $q_url $q_dir; fi
      if [ -n $q_ref ]; then git -C $q_dir checkout --quiet $q_ref
        git -C $q_dir pull --ff-only --quiet 2>/dev/null || true
      else git -C $q_dir pull --ff-only --quiet; fi
      git -C $q_dir log -1 --oneline"
  else
    # A clean copy of this checkout (tracked + untracked-but-not-ignored files; no .git, no
    # build outputs or venvs), packed locally and unpacked on every worker.
    local tmp tarball
    tmp="$(mktemp -d -t glide_jax_src.XXXXXX)"
    tarball="$tmp/src.tar.gz"
    if git -C "$REPO_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
      # shellcheck disable=SC2016  # $f is expanded by the inner sh
      (cd "$REPO_ROOT" && git ls-files -z --cached --others --exclude-standard \
        | xargs -0 -r sh -c 'for f; do if [ -e "$f" ]; then printf "%s\0" "$f"; fi; done' sh \
        | tar --null -czf "$tarball" -T -)
    else
      tar -C "$REPO_ROOT" --exclude=.git -czf "$tarball" .
    fi
    echo "tpu_vm.sh: copying $(du -h "$tarball" | cut -f1) of code to every worker" >&2
    gcloud_tpu scp "$tarball" "$TPU_NAME:~/glide_jax_src.tar.gz" --worker=all
    rm -rf "$tmp"
    local q_dir
    q_dir="$(printf '%q' "$REMOTE_DIR")"
    ssh_all "set -euo pipefail; rm -rf $q_dir.new && mkdir -p $q_dir.new &&
      tar -xzf ~/glide_jax_src.tar.gz -C $q_dir.new && rm -rf $q_dir && mv $q_dir.new $q_dir &&
      rm -f ~/glide_jax_src.tar.gz && echo \"\$(hostname): code in ~/$REMOTE_DIR\""
  fi
}

cmd_setup() {
  need_zone
  cmd_sync
  local v q_dir
  v="$(jax_version)"
  q_dir="$(printf '%q' "$REMOTE_DIR")"
  echo "tpu_vm.sh: installing glide_jax + jax[tpu]==$v on every worker" >&2
  ssh_all "set -euo pipefail
    $REMOTE_PYTHON -m venv $VENV || { sudo apt-get update -qq && sudo apt-get install -y -qq python3-venv && $REMOTE_PYTHON -m venv $VENV; }
    source $VENV/bin/activate
    python -m pip install --quiet --upgrade pip
    cd $q_dir
    python -m pip install --quiet -e . 'jax[tpu]==$v' -f $LIBTPU_INDEX
    python -c 'import jax; print(jax.process_index(), jax.local_device_count(), jax.device_count(), jax.devices()[0].device_kind)'"
}

cmd_run() {
  need_zone
  [[ $# -ge 2 ]] || die "usage: tpu_vm.sh run CONFIG WORKDIR [overrides...]"
  local config="$1" workdir="$2"
  shift 2
  local n
  n="$(num_workers)"
  if [[ "$n" -gt 1 && "$workdir" != gs://* ]]; then
    echo "tpu_vm.sh: WARNING: $n workers but WORKDIR=$workdir is not gs://: every worker must" \
         "see the same checkpoints (use a gs:// path or a filesystem mounted on every worker)" >&2
  fi
  local py_cmd q_dir
  py_cmd="$(printf '%q ' python -m glide_jax.main "--config=$config" "--workdir=$workdir" "$@")"
  q_dir="$(printf '%q' "$REMOTE_DIR")"
  local prologue="set -eo pipefail; source $VENV/bin/activate; cd $q_dir; mkdir -p $REMOTE_LOG_DIR"
  if [[ "$DETACH" == 1 ]]; then
    # setsid + nohup: survives the ssh session; SIGTERM to the pid in run.pid stops it cleanly.
    ssh_all "$prologue
      if [ -f $REMOTE_PID_FILE ] && kill -0 \"\$(cat $REMOTE_PID_FILE)\" 2>/dev/null; then
        echo \"\$(hostname): a run is already going (pid \$(cat $REMOTE_PID_FILE))\" >&2; exit 1; fi
      setsid nohup $py_cmd > $REMOTE_LOG_DIR/run.log 2>&1 < /dev/null &
      echo \$! > $REMOTE_PID_FILE
      echo \"\$(hostname): started pid \$!, log $REMOTE_LOG_DIR/run.log\""
    echo "tpu_vm.sh: detached; follow with: $0 logs   stop with: $0 stop" >&2
  else
    ssh_all "$prologue; $py_cmd 2>&1 | tee $REMOTE_LOG_DIR/run.log"
  fi
}

cmd_logs() {
  need_zone
  local worker="${1:-0}"
  gcloud_tpu ssh "$TPU_NAME" "--worker=$worker" --command="tail -n 100 -F $REMOTE_LOG_DIR/run.log"
}

cmd_stop() {
  need_zone
  ssh_all "if [ -f $REMOTE_PID_FILE ] && kill -0 \"\$(cat $REMOTE_PID_FILE)\" 2>/dev/null; then
      kill -TERM \"\$(cat $REMOTE_PID_FILE)\" && echo \"\$(hostname): SIGTERM sent\"
    else echo \"\$(hostname): no run going\"; fi"
}

cmd_ssh() {
  need_zone
  local worker="${1:-0}"
  [[ $# -gt 0 ]] && shift
  if [[ $# -gt 0 ]]; then
    gcloud_tpu ssh "$TPU_NAME" "--worker=$worker" --command="$*"
  else
    gcloud_tpu ssh "$TPU_NAME" "--worker=$worker"
  fi
}

cmd_status() {
  need_zone
  gcloud_tpu describe "$TPU_NAME" \
    --format='table(name.basename(),acceleratorType,state,health,schedulingConfig.spot,schedulingConfig.preemptible,networkEndpoints.len():label=WORKERS)'
}

cmd_delete() {
  need_zone
  gcloud_tpu delete "$TPU_NAME" --quiet
}

main() {
  [[ $# -ge 1 ]] || { usage >&2; exit 2; }
  local sub="$1"
  shift
  case "$sub" in
    create) cmd_create "$@" ;;
    setup) cmd_setup "$@" ;;
    sync) cmd_sync "$@" ;;
    run) cmd_run "$@" ;;
    logs) cmd_logs "$@" ;;
    stop) cmd_stop "$@" ;;
    ssh) cmd_ssh "$@" ;;
    status) cmd_status "$@" ;;
    delete) cmd_delete "$@" ;;
    -h|--help|help) usage ;;
    *) usage >&2; die "unknown subcommand $sub" ;;
  esac
}

main "$@"
