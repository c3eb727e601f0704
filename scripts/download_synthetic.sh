#!/usr/bin/env bash
# Download the published synthetic benchmarks (Synthetic.7z, ~46 GB; ~60 GB extracted).
#   bash scripts/download_synthetic.sh [DEST]
# Resumable: run it again after an interruption. Needs curl or wget, and 7z (p7zip-full).
source "$(dirname "${BASH_SOURCE[0]}")/_download_common.sh"
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n 2,4p "$0"; usage_dest; exit 0
fi
DEST="${1:-data}"
fetch 7506 "$DEST/Synthetic.7z"
extract "$DEST/Synthetic.7z" "$DEST"
check synthetic --root "$DEST/Synthetic"
cleanup_archive "$DEST/Synthetic.7z"
echo "done: use --root_synthetic $DEST/Synthetic/<experiment>"
