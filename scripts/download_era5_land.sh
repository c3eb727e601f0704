#!/usr/bin/env bash
# Download ERA5-Land weekly data for one CORDEX region or all six (one <REGION>.7z each).
#   bash scripts/download_era5_land.sh [REGION|all] [DEST]
# REGION: AFR-11 CAS-11 EAS-11 EUR-11 NAM-11 SAM-11 (default EUR-11). Archives are large:
# tens of GB per region (estimate from the grid sizes; AFR-11 and EAS-11 the largest; the whole
# release incl. CERRA and NOAA is ~1.1 TB).
# Resumable: run it again after an interruption. Needs curl or wget, and 7z (p7zip-full).
# Labels come separately: scripts/download_noaa_era5_land.sh.
source "$(dirname "${BASH_SOURCE[0]}")/_download_common.sh"
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n 2,8p "$0"; usage_dest; exit 0
fi
REGION="${1:-EUR-11}"
DEST="${2:-data}"
declare -A IDS=([AFR-11]=7513 [CAS-11]=7514 [EAS-11]=7515 [EUR-11]=7516 [NAM-11]=7517 [SAM-11]=7518)
if [ "$REGION" = "all" ]; then
  REGIONS=(AFR-11 CAS-11 EAS-11 EUR-11 NAM-11 SAM-11)
elif [ -n "${IDS[$REGION]:-}" ]; then
  REGIONS=("$REGION")
else
  echo "error: unknown region '$REGION' (AFR-11 CAS-11 EAS-11 EUR-11 NAM-11 SAM-11 or all)" >&2; exit 2
fi
for r in "${REGIONS[@]}"; do
  fetch "${IDS[$r]}" "$DEST/ERA5-Land/$r.7z"
  extract "$DEST/ERA5-Land/$r.7z" "$DEST/ERA5-Land"
  check era5_land --root "$DEST/ERA5-Land" --region "$r"
  cleanup_archive "$DEST/ERA5-Land/$r.7z"
done
echo "done: use --root_ERA5_Land $DEST/ERA5-Land --region <REGION>"
