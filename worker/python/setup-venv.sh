#!/usr/bin/env bash
# Creates (or reuses) the Python virtualenv for worker/python and installs its pinned requirements.
# The venv lives outside the work tree so it survives fresh clones; it is rebuilt when the
# requirements or constraints change (their hash is recorded inside it).
#
# $cache/venv is a symlink to $cache/venv-<hash>. Two checkouts may run this at once: the build
# runs under a lock (flock on $cache/venv.lock), the one that waits re-checks and reuses what the
# other built, and the new venv replaces the old one by renaming the symlink, so nobody ever
# sees a half-built venv at $cache/venv (a venv cannot be moved once built: its scripts name
# their own path, hence the symlink rather than a rename of the directory itself).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${LKMCP_CACHE:-$HOME/.cache/livekit-mcp-dispatch}"
venv="$cache/venv"
python="${PYTHON:-python3}"
lock_wait="${LKMCP_LOCK_WAIT_SECONDS:-1800}"

hash="$(cat "$here/requirements.txt" "$here"/constraints*.txt "$here/setup-venv.sh" 2>/dev/null | sha256sum | cut -d' ' -f1 || true)"
built="$cache/venv-${hash:0:16}"

ready() {
  [[ -x "$venv/bin/python" && -f "$venv/.requirements-hash" && "$(cat "$venv/.requirements-hash")" == "$hash" ]]
}

if ready; then
  echo "worker/python: reusing $venv"
  exit 0
fi

mkdir -p "$cache"
# shellcheck source=../../scripts/lib/cache-lock.sh
source "$here/../../scripts/lib/cache-lock.sh"
cache_lock "$cache/venv.lock" "$lock_wait" "a build of the worker venv"
if ready; then
  echo "worker/python: reusing $venv (built by another process meanwhile)"
  exit 0
fi

echo "worker/python: creating $venv (-> $built)"
# A directory left by an interrupted build under this lock's predecessor: it has no hash file.
rm -rf "$built"
"$python" -m venv "$built"
"$built/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
args=(-r "$here/requirements.txt")
[[ -f "$here/constraints.txt" ]] && args+=(-c "$here/constraints.txt")
"$built/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}"
echo "$hash" >"$built/.requirements-hash"

# Swap: a symlink is replaced by a rename (atomic); an older script's real directory is moved
# aside first (the one moment without a venv, only once, under the lock).
previous=""
if [[ -L "$venv" ]]; then
  previous="$(readlink "$venv")"
elif [[ -e "$venv" ]]; then
  previous="venv-old.$$"
  mv "$venv" "$cache/$previous"
fi
ln -sfn "$(basename "$built")" "$cache/venv.new.$$"
"$python" -c 'import os, sys; os.replace(sys.argv[1], sys.argv[2])' "$cache/venv.new.$$" "$venv"
# Keep the one just replaced (a test of another checkout may still run in it); drop older ones.
for old in "$cache"/venv-*; do
  name="$(basename "$old")"
  [[ "$name" == "$(basename "$built")" || "$name" == "$(basename "$previous")" ]] && continue
  rm -rf "$old"
done
echo "worker/python: ready"
