# Shared by the download_*.sh scripts (sourced, not run): resumable download + 7-Zip extraction
# + layout check. Data: Shams Eddin et al., "Identifying Spatio-Temporal Drivers of Extreme
# Events", DOI 10.60507/FK2/RD9E33 (bonndata.uni-bonn.de).
set -euo pipefail
BASE_URL="${IDEE_DATA_URL:-https://bonndata.uni-bonn.de/api/access/datafile}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"

fetch() {  # fetch <file id> <output file>: resumable (curl -C - / wget -c)
  local id="$1" out="$2"
  mkdir -p "$(dirname "$out")"
  echo "[download] $BASE_URL/$id -> $out"
  if command -v curl >/dev/null 2>&1; then
    curl -fL --retry 5 --retry-delay 10 -C - -o "$out" "$BASE_URL/$id"
  elif command -v wget >/dev/null 2>&1; then
    wget -c --tries=5 -O "$out" "$BASE_URL/$id"
  else
    echo "error: neither curl nor wget is installed" >&2; exit 1
  fi
}

need_7z() {
  if ! command -v 7z >/dev/null 2>&1; then
    echo "error: 7z not found; install 7-Zip (Debian/Ubuntu: sudo apt-get install p7zip-full)" >&2
    exit 1
  fi
}

extract() {  # extract <archive (first part for multi-part)> <destination folder>
  need_7z
  echo "[extract] $1 -> $2"
  mkdir -p "$2"
  7z x -y -aos "-o$2" "$1" >/dev/null   # -aos: keep files already extracted (resume)
}

check() {  # check <kind> <root> [--region R]
  "$PYTHON" "$REPO/scripts/check_tree.py" "$@"
}

usage_dest() {
  echo "  DEST (default ./data) receives the archive(s) and the extracted tree;"
  echo "  KEEP_ARCHIVES=1 keeps the .7z files after a successful extraction."
}

cleanup_archive() {
  if [ "${KEEP_ARCHIVES:-0}" != "1" ]; then rm -f "$@"; fi
}
