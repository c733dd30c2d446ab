#!/usr/bin/env bash
# Creates (or reuses) the Python virtualenv for worker/python and installs its pinned requirements.
# The venv lives outside the work tree so it survives fresh clones; it is rebuilt when the
# requirements or constraints change (their hash is recorded inside it).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${LKMCP_CACHE:-$HOME/.cache/livekit-mcp-dispatch}"
venv="$cache/venv"
python="${PYTHON:-python3}"

hash="$(cat "$here/requirements.txt" "$here"/constraints*.txt "$here/setup-venv.sh" 2>/dev/null | sha256sum | cut -d' ' -f1 || true)"
if [[ -x "$venv/bin/python" && -f "$venv/.requirements-hash" && "$(cat "$venv/.requirements-hash")" == "$hash" ]]; then
  echo "worker/python: reusing $venv"
  exit 0
fi

echo "worker/python: creating $venv"
rm -rf "$venv"
mkdir -p "$cache"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
args=(-r "$here/requirements.txt")
[[ -f "$here/constraints.txt" ]] && args+=(-c "$here/constraints.txt")
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}"
echo "$hash" > "$venv/.requirements-hash"
echo "worker/python: ready"
