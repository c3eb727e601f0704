#!/usr/bin/env bash
# Installs what the tests need into .venv (first run) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/bootstrap.sh
python -m pytest "$@"
