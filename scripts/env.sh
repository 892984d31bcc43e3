# Shared environment of the project scripts. Source it: `. "$(dirname "$0")/env.sh"`.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
# Project-local tools (cargo-lambda, cfn-lint, moto) come first.
export PATH="$ROOT/.tools/venv/bin:$ROOT/cdk/node_modules/.bin:$PATH"
# One target dir for every cargo invocation (tests, lambda builds); CI points it at a cache.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# Offline, quiet CDK.
export CDK_DISABLE_CLI_TELEMETRY=1 CDK_DISABLE_VERSION_CHECK=1
log() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
