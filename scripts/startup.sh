#!/usr/bin/env bash
# Measures the forward function's start-up (scripts/startup.py): builds the release binary as
# synth does (one cargo lambda build), then starts it 20 times against a Runtime API stand-in
# and moto.
#   scripts/startup.sh [starts]
set -euo pipefail
. "$(dirname "$0")/env.sh"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
log "release build of the functions (cargo lambda build, as synth)"
cargo lambda build --release --disable-optimizations --x86-64 --bin forward-api --bin secret-rotation
log "start-up of forward-api"
python3 "$ROOT/scripts/startup.py" "$CARGO_TARGET_DIR/lambda/forward-api/bootstrap" "${1:-20}"
