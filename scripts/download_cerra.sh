#!/usr/bin/env bash
# Download CERRA weekly data (a two-part archive CERRA.7z.001 + CERRA.7z.002; estimate: several hundred GB).
#   bash scripts/download_cerra.sh [DEST]
# Resumable: run it again after an interruption. Needs curl or wget, and 7z (p7zip-full).
# Labels come separately: scripts/download_noaa_cerra.sh.
source "$(dirname "${BASH_SOURCE[0]}")/_download_common.sh"
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n 2,5p "$0"; usage_dest; exit 0
fi
DEST="${1:-data}"
fetch 7509 "$DEST/CERRA.7z.001"
fetch 7510 "$DEST/CERRA.7z.002"
extract "$DEST/CERRA.7z.001" "$DEST"   # 7z reads the .002 part by itself
check cerra --root "$DEST/CERRA"
cleanup_archive "$DEST/CERRA.7z.001" "$DEST/CERRA.7z.002"
echo "done: use --root_CERRA $DEST/CERRA"
