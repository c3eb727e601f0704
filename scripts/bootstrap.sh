# Sourced by quickstart.sh and run_tests.sh: create .venv with Python 3.11 and install
# the pinned requirements once (re-installs only when a requirements file changed).
set -euo pipefail
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3 python; do
    if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
  done
fi
[ -n "$PY" ] || { echo "error: no python3.11 found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
"$PY" - <<'PYEOF' || { echo "error: IDEE needs Python >= 3.11 (found $("$PY" --version 2>&1)); set PYTHON=..." >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)
PYEOF
VENV="${IDEE_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
STAMP="$VENV/.idee-installed"
WANT="$(cat requirements.txt requirements-dev.txt | sha1sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "[setup] installing requirements into $VENV (first run only, a few minutes)"
  python -m pip install -q --upgrade pip
  # torch first and exactly pinned, so nothing pulls a CUDA build as a dependency
  python -m pip install -q "$(grep -E '^torch==' requirements.txt)"
  python -m pip install -q -r requirements-dev.txt
  echo "$WANT" > "$STAMP"
fi
