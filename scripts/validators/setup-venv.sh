#!/usr/bin/env bash
# Creates (or reuses) the Python virtualenv of the external tools (openapi-spec-validator,
# schemathesis, moto's server) and installs their pinned requirements. Like worker/python/setup-venv.sh, the venv
# lives in the shared cache outside the work tree and is rebuilt when its inputs change (their
# hash is recorded inside it). Two checkouts may run this at once: the build holds an flock on
# the cache, and a new venv is built beside the old one and moved into place, so a reader never
# sees a half-built one.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${LKMCP_CACHE:-$HOME/.cache/livekit-mcp-dispatch}"
venv="$cache/validators-venv"
python="${PYTHON:-python3}"

hash="$(cat "$here/requirements.txt" "$here/constraints.txt" "$here/setup-venv.sh" | sha256sum | cut -d' ' -f1)"
ready() { [[ -x "$venv/bin/python" && -f "$venv/.requirements-hash" && "$(cat "$venv/.requirements-hash")" == "$hash" ]]; }
if ready; then
  echo "validators: reusing $venv"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/validators-venv.lock"
flock 9
# Another checkout may have built it while this one waited for the lock.
if ready; then
  echo "validators: reusing $venv"
  exit 0
fi

echo "validators: creating $venv (PyPI: openapi-spec-validator, schemathesis, moto[server])"
tmp="$venv.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv "$tmp"
"$tmp/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$tmp/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" -c "$here/constraints.txt"
echo "$hash" > "$tmp/.requirements-hash"
# Swap it in with renames. A moved venv keeps working through `bin/python -m …` (its scripts'
# shebangs would not), which is how scripts/schemathesis.sh calls it.
if [[ -e "$venv" ]]; then mv "$venv" "$venv.old.$$"; fi
mv "$tmp" "$venv"
rm -rf "$venv.old.$$"
trap - EXIT
echo "validators: ready"
