#!/usr/bin/env bash
# Installs the pinned LiveKit server from the Go module proxy into a cache outside the repo,
# so a fresh clone on the same machine (CI) reuses it. Prints the binary path on stdout.
set -euo pipefail

LIVEKIT_VERSION="${LIVEKIT_VERSION:-v1.13.5}"
CACHE="${LKMCP_CACHE:-$HOME/.cache/livekit-mcp-dispatch}"
BIN_DIR="$CACHE/bin"
BIN="$BIN_DIR/livekit-server"
STAMP="$CACHE/livekit-server.version"

if [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$LIVEKIT_VERSION" ]]; then
  echo "livekit-server $LIVEKIT_VERSION already installed" >&2
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to install livekit-server" >&2; exit 1; }

mkdir -p "$BIN_DIR"
# Build into a scratch GOBIN, then move: a failed or interrupted build never leaves a
# binary that the stamp would vouch for.
TMP_BIN="$(mktemp -d "$CACHE/gobin.XXXXXX")"
trap 'rm -rf "$TMP_BIN"' EXIT

start=$(date +%s)
echo "building github.com/livekit/livekit-server/cmd/server@$LIVEKIT_VERSION ..." >&2
# GOTOOLCHAIN=local: never download another Go toolchain behind the user's back (v1.13.5's
# go.mod says `go 1.26`; an older local Go fails here with that message; set GOTOOLCHAIN=auto to
# let Go fetch the toolchain from the module proxy instead).
GOBIN="$TMP_BIN" GOTOOLCHAIN="${GOTOOLCHAIN:-local}" \
  go install "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_VERSION"
mv -f "$TMP_BIN/server" "$BIN"
echo "$LIVEKIT_VERSION" >"$STAMP"
echo "built in $(( $(date +%s) - start ))s" >&2
echo "$BIN"
