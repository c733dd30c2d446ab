#!/usr/bin/env bash
# Runs the Python worker tests in the virtualenv that setup-venv.sh made.
# The tests seal vectors and start an MCP server with the repository's TypeScript (root tsx),
# so `npm ci` must have run at the root (its workspaces include worker/).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${LKMCP_CACHE:-$HOME/.cache/livekit-mcp-dispatch}/venv"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "worker/python: no virtualenv at $venv; run worker/python/setup-venv.sh first" >&2
  exit 1
fi
cd "$here"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests "$@"
