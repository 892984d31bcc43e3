# Shared environment of the project scripts. Source it: `. "$(dirname "$0")/env.sh"`.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
# Project-local tools (cargo-lambda, cfn-lint, moto) come first. They live in .tools/ unless
# EVENTFABRIC_TOOLS says elsewhere: CI keeps them next to its cargo cache, because the linker
# wrapper cargo-lambda hands to cargo is named after cargo-lambda's path, and a path that
# changes with every clone makes cargo rebuild the whole release tree.
TOOLS="${EVENTFABRIC_TOOLS:-$ROOT/.tools}"
export TOOLS
export PATH="$TOOLS/venv/bin:$ROOT/cdk/node_modules/.bin:$PATH"
# One target dir for every cargo invocation (tests, lambda builds); CI points it at a cache.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# Offline, quiet CDK.
export CDK_DISABLE_CLI_TELEMETRY=1 CDK_DISABLE_VERSION_CHECK=1
# Steps are logged with the seconds since the outermost script started.
EVENTFABRIC_T0="${EVENTFABRIC_T0:-$(date +%s)}"
export EVENTFABRIC_T0
log() { printf '\n\033[1m== [%4ss] %s\033[0m\n' "$(( $(date +%s) - EVENTFABRIC_T0 ))" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# scripts/setup.sh in the background, its output held until setup_wait: the cargo steps that
# need neither the Python tools nor the CDK packages run meanwhile (on a fresh machine that
# hides about a minute of downloads behind the first cargo build). A script that exits before
# setup_wait stops it (setup.sh starts over the next time).
setup_start() {
  SETUP_LOG="$(mktemp)"
  "$ROOT/scripts/setup.sh" >"$SETUP_LOG" 2>&1 &
  SETUP_PID=$!
  trap 'kill "$SETUP_PID" 2>/dev/null || true' EXIT
}
setup_wait() {
  local status=0
  wait "$SETUP_PID" || status=$?
  cat "$SETUP_LOG" >&2
  rm -f "$SETUP_LOG"
  [ "$status" -eq 0 ] || die "scripts/setup.sh failed (exit $status); its output is above"
}
