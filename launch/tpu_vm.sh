#!/usr/bin/env bash
# A TPU pod slice: the same command on every worker (one process per host).
# Usage: launch/tpu_vm.sh TPU_NAME ZONE CONFIG WORKDIR [overrides...]
# WORKDIR should be a bucket path or shared disk every worker sees. JAX finds
# the pod's hosts itself (jax.distributed.initialize() with no arguments).
# Preemptible TPUs send SIGTERM first: the run checkpoints and exits; run this
# script again to resume.
set -euo pipefail
tpu=${1:?usage: launch/tpu_vm.sh TPU_NAME ZONE CONFIG WORKDIR [overrides...]}
zone=${2:?usage: launch/tpu_vm.sh TPU_NAME ZONE CONFIG WORKDIR [overrides...]}
config=${3:?usage: launch/tpu_vm.sh TPU_NAME ZONE CONFIG WORKDIR [overrides...]}
workdir=${4:?usage: launch/tpu_vm.sh TPU_NAME ZONE CONFIG WORKDIR [overrides...]}
shift 4
gcloud compute tpus tpu-vm ssh "$tpu" --zone="$zone" --worker=all --command="\
  cd ~/mammojax && python -m mammojax.main --config=$config --workdir=$workdir $*"
