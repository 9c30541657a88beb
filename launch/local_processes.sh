#!/usr/bin/env bash
# Several processes on one machine (e.g. one per GPU, or a CPU rehearsal of a
# multi-host run): process i of N joins through a local coordinator.
# Usage: NUM_PROCESSES=2 launch/local_processes.sh CONFIG WORKDIR [overrides...]
# On CPU, XLA_FLAGS=--xla_force_host_platform_device_count=K gives each process K devices.
set -euo pipefail
config=${1:?usage: NUM_PROCESSES=N launch/local_processes.sh CONFIG WORKDIR [overrides...]}
workdir=${2:?usage: NUM_PROCESSES=N launch/local_processes.sh CONFIG WORKDIR [overrides...]}
shift 2
count=${NUM_PROCESSES:-2}
port=${COORDINATOR_PORT:-12355}
cd "$(dirname "$0")/.."
pids=()
for ((i = 0; i < count; i++)); do
  python -m mammojax.main --config="$config" --workdir="$workdir" \
    --coordinator_address="localhost:$port" --num_processes="$count" --process_id="$i" "$@" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit "$status"
