#!/usr/bin/env bash
# Download the NOAA VHI labels and masks on the CORDEX grids (NOAA_CORDEX.7z, all six regions;
# tens of GB) for the ERA5-Land loaders.
#   bash scripts/download_noaa_era5_land.sh [DEST]
# Resumable: run it again after an interruption. Needs curl or wget, and 7z (p7zip-full).
source "$(dirname "${BASH_SOURCE[0]}")/_download_common.sh"
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n 2,5p "$0"; usage_dest; exit 0
fi
DEST="${1:-data}"
fetch 7508 "$DEST/NOAA_CORDEX.7z"
extract "$DEST/NOAA_CORDEX.7z" "$DEST"
check noaa_era5_land --root "$DEST/NOAA_CORDEX"
cleanup_archive "$DEST/NOAA_CORDEX.7z"
echo "done: use --root_NOAA $DEST/NOAA_CORDEX"
