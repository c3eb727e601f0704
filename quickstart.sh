#!/usr/bin/env bash
# The main job end to end: install (first run), generate the `small` synthetic benchmark
# (once), train IDE, test it, print driver and extreme metrics and where the run folder is.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/bootstrap.sh
python -m scripts.quickstart "$@"
