#!/usr/bin/env bash
# One process using every local device (CPU cores or GPUs) of this machine.
# Usage: launch/local.sh CONFIG WORKDIR [--config.field=value ...]
set -euo pipefail
config=${1:?usage: launch/local.sh CONFIG WORKDIR [overrides...]}
workdir=${2:?usage: launch/local.sh CONFIG WORKDIR [overrides...]}
shift 2
cd "$(dirname "$0")/.."
exec python -m mammojax.main --config="$config" --workdir="$workdir" "$@"
