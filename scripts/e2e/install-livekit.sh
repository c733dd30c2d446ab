#!/usr/bin/env bash
# Installs the pinned LiveKit server from the Go module proxy into a cache outside the repo,
# so a fresh clone on the same machine (CI) reuses it. Prints the binary path on stdout.
#
# Two checkouts may run this at once: the build runs under a lock (flock on
# $CACHE/livekit-server.lock), the one that waits re-checks the cache and reuses what the other
# built, and the binary and its stamp are each replaced by a rename, never written in place.
set -euo pipefail

LIVEKIT_VERSION="${LIVEKIT_VERSION:-v1.13.5}"
CACHE="${LKMCP_CACHE:-$HOME/.cache/livekit-mcp-dispatch}"
BIN_DIR="$CACHE/bin"
BIN="$BIN_DIR/livekit-server"
STAMP="$CACHE/livekit-server.version"
LOCK="$CACHE/livekit-server.lock"
# How long to wait for another checkout's build before giving up (seconds).
LOCK_WAIT="${LKMCP_LOCK_WAIT_SECONDS:-1800}"

installed() {
  [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$LIVEKIT_VERSION" ]]
}

if installed; then
  echo "livekit-server $LIVEKIT_VERSION already installed" >&2
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || {
  echo "go is required to build livekit-server $LIVEKIT_VERSION (https://go.dev/dl), or run a LiveKit server yourself" >&2
  exit 1
}

mkdir -p "$BIN_DIR"
# shellcheck source=../lib/cache-lock.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cache-lock.sh"
cache_lock "$LOCK" "$LOCK_WAIT" "a build of livekit-server"
if installed; then
  echo "livekit-server $LIVEKIT_VERSION was built by another checkout meanwhile" >&2
  echo "$BIN"
  exit 0
fi

# Build into a scratch GOBIN, then move: a failed or interrupted build never leaves a
# binary that the stamp would vouch for.
TMP_BIN="$(mktemp -d "$CACHE/gobin.XXXXXX")"
ticker=""
cleanup() {
  [[ -n "$ticker" ]] && kill "$ticker" 2>/dev/null || true
  rm -rf "$TMP_BIN"
}
trap cleanup EXIT

start=$(date +%s)
echo "building github.com/livekit/livekit-server/cmd/server@$LIVEKIT_VERSION into $BIN_DIR (once; a few minutes) ..." >&2
# `go install` is silent while it downloads and compiles: say every 30 s that it still runs.
# (1 s sleeps: the ticker's own sleep would otherwise hold stderr open for up to 30 s after the build.)
(
  n=0
  while sleep 1; do
    n=$((n + 1))
    ((n % 30 == 0)) && echo "  ... still building livekit-server ($(( $(date +%s) - start )) s)" >&2
  done
) &
ticker=$!
# GOTOOLCHAIN=local: never download another Go toolchain behind the user's back (v1.13.5's
# go.mod says `go 1.26`; an older local Go fails here with that message; set GOTOOLCHAIN=auto to
# let Go fetch the toolchain from the module proxy instead).
GOBIN="$TMP_BIN" GOTOOLCHAIN="${GOTOOLCHAIN:-local}" \
  go install "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_VERSION"
mv -f "$TMP_BIN/server" "$BIN"
echo "$LIVEKIT_VERSION" >"$TMP_BIN/stamp"
mv -f "$TMP_BIN/stamp" "$STAMP"
echo "built livekit-server $LIVEKIT_VERSION in $(( $(date +%s) - start )) s" >&2
echo "$BIN"
