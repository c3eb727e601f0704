#!/usr/bin/env bash
# Download the NOAA VHI labels and masks on the CERRA grid (NOAA_CERRA.7z; tens of GB).
#   bash scripts/download_noaa_cerra.sh [DEST]
# Resumable: run it again after an interruption. Needs curl or wget, and 7z (p7zip-full).
source "$(dirname "${BASH_SOURCE[0]}")/_download_common.sh"
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n 2,4p "$0"; usage_dest; exit 0
fi
DEST="${1:-data}"
fetch 7507 "$DEST/NOAA_CERRA.7z"
extract "$DEST/NOAA_CERRA.7z" "$DEST"
check noaa_cerra --root "$DEST/NOAA_CERRA"
cleanup_archive "$DEST/NOAA_CERRA.7z"
echo "done: use --root_NOAA_CERRA $DEST/NOAA_CERRA"
