#!/usr/bin/env bash
# The prepared GPU check (scripts/gpu_check.py; docs/guides/gpu-training.md): run from the repository root of
# the checkout that the device tool sends, with wheels/ filled by scripts/gpu_check_prepare.sh:
#
#   run(command="bash scripts/gpu_check.sh", carry=["wheels"], timeout_s=420)
#   bash scripts/gpu_check.sh --dry          # CPU, tiny sizes
#
# Installs the carried wheels where our imports fail (the GPU image has no netCDF4 or
# vector-quantize-pytorch), then runs the check; its figures go to $OUT/gpu_check.json when OUT is set.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
if ! "$PY" -c "import netCDF4, vector_quantize_pytorch" 2>/dev/null; then
  if ls wheels/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --find-links wheels netCDF4 vector-quantize-pytorch || exit 1
  else
    echo "gpu_check.sh: netCDF4 or vector-quantize-pytorch missing and no wheels/ folder: run scripts/gpu_check_prepare.sh here first" >&2
    exit 2
  fi
fi
export PYTHONUNBUFFERED=1
if [ -n "${OUT:-}" ] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv >"$OUT/nvidia-smi.txt" 2>&1
fi
exec timeout "${GPU_CHECK_TIMEOUT:-330}" "$PY" -m scripts.gpu_check "$@"
