# Sourced by scripts/e2e/install-livekit.sh and worker/python/setup-venv.sh: one lock per cached
# artifact, so two checkouts sharing LKMCP_CACHE never build the same thing at once.
#
#   cache_lock <lock file> <max wait seconds> <what, for the waiting message>
#
# Holds an exclusive flock on file descriptor 9 until the calling script exits (the kernel
# releases it with the descriptor, also on a crash or kill -9, so no stale lock is left).
# Without flock (macOS without util-linux) it says so and goes on unlocked.
cache_lock() {
  local lock="$1" wait="$2" what="$3"
  if ! command -v flock >/dev/null; then
    echo "note: flock not found; building without a lock (do not run two builds at once)" >&2
    return 0
  fi
  exec 9>"$lock"
  if ! flock -n 9; then
    echo "waiting for $what that another process is running (lock $lock, up to $wait s) ..." >&2
    flock -w "$wait" 9 || {
      echo "gave up waiting for $lock after $wait s" >&2
      exit 1
    }
  fi
}
