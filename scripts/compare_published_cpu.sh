#!/usr/bin/env bash
# Side-by-side CPU step time: ours (scripts/benchmark_model.py) and the published implementation
# (../shared/reference-harness/ref_step.py), alternated in one run on the same machine, same shape:
# 6 variables, delta_t 8, forward + backward + Adam, 2 threads. Measurement only: nothing of the
# published code enters the project.
#
#   IDEE_GIT=<git dir of a copy of HakamShams/IDEE> bash scripts/compare_published_cpu.sh [SIZE] [BATCH] [ROUNDS]
#
# Prints one line per measurement and a table of medians and ratios (published / ours).
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-64} batch=${2:-2} rounds=${3:-3} steps=5
harness=../shared/reference-harness
: "${IDEE_GIT:?set IDEE_GIT to the git directory of a copy of HakamShams/IDEE}"
eval "$(WORK=${WORK:-/tmp/idee_ref} bash "$harness/setup.sh" | tail -1)"
source scripts/bootstrap.sh >/dev/null
export OMP_NUM_THREADS=2
out=$(mktemp)
for r in $(seq "$rounds"); do
  for enc in Swin_3D CNN_3D; do
    ours=$(python scripts/benchmark_model.py --encoder "$enc" --size "$size" --batch "$batch" --steps "$steps" \
           --threads 2 | tail -1 | python -c 'import json, sys; print(json.load(sys.stdin)["ms_per_step"])')
    ref=$(PYTHONPATH="$IDEE_SHIM:$IDEE_REF" IDEE_REF=$IDEE_REF "$IDEE_REF_PY" "$harness/ref_step.py" \
          "$enc" "$size" "$batch" "$steps" | grep -o '[0-9.]* ms/step' | tail -1 | cut -d' ' -f1)
    echo "round $r $enc ours $ours ms/step, published $ref ms/step"
    echo "$enc $ours $ref" >> "$out"
  done
done
python - "$out" "$size" "$batch" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
print(f"\nmedian ms/step, {sys.argv[2]} x {sys.argv[2]}, batch {sys.argv[3]}, 6 variables, delta_t 8, 2 threads, "
      f"load average {open('/proc/loadavg').read().split()[0]}")
print("| encoder | ours | published | published / ours |\n|---|---|---|---|")
for enc in ("Swin_3D", "CNN_3D"):
    o = statistics.median(float(r[1]) for r in rows if r[0] == enc)
    p = statistics.median(float(r[2]) for r in rows if r[0] == enc)
    print(f"| {enc} | {o:.0f} | {p:.0f} | {p / o:.2f}x |")
EOF
rm -f "$out"
