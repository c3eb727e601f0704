#!/usr/bin/env bash
# Fill the ignored folder wheels/ with what scripts/gpu_check.sh needs on a GPU machine that cannot
# download: cp312 manylinux wheels of the packages our code needs and the GPU image lacks, the
# published implementation's source (for its step time; measurement only) and the harness's ref_step.py.
#
#   IDEE_GIT=<git dir of a copy of HakamShams/IDEE> bash scripts/gpu_check_prepare.sh
#
# Without IDEE_GIT only the wheels are fetched (gpu_check then skips the published step time).
# The device tool carries wheels/ with `carry: ["wheels"]` (keep it under 64 MiB with the tree).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p wheels
PY=${PY:-python3}
# The GPU image (torch 2.11, Python 3.12) has numpy, xarray, einops, sympy, timm; it lacks these.
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d wheels netCDF4==1.7.5.1.post1 cftime==1.6.6.1 vector-quantize-pytorch==1.32.0 einx==0.4.3 \
  frozendict==2.5.1 loguru==0.7.3 torch-einops-utils==0.2.0
harness=../shared/reference-harness
if [ -f "$harness/ref_step.py" ]; then
  mkdir -p wheels/reference-harness
  cp "$harness/ref_step.py" wheels/reference-harness/
  [ -d "$harness/shim" ] && rm -rf wheels/reference-harness/shim && cp -r "$harness/shim" wheels/reference-harness/shim
fi
if [ -n "${IDEE_GIT:-}" ]; then
  rm -rf wheels/idee_ref && mkdir -p wheels/idee_ref
  git -C "$IDEE_GIT" ls-tree -r --name-only HEAD | grep -v '^docs/' | while read -r f; do
    mkdir -p "wheels/idee_ref/$(dirname "$f")"; git -C "$IDEE_GIT" show "HEAD:$f" > "wheels/idee_ref/$f"; done
fi
du -sh wheels
