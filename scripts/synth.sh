#!/usr/bin/env bash
# The main job: synthesize every stack of one environment into cdk/cdk.out (or OUTDIR),
# building the Rust functions for provided.al2023 on the way, and print a summary.
#   scripts/synth.sh [dev|staging|prod] [OUTDIR]
set -euo pipefail
. "$(dirname "$0")/env.sh"
env_name="${1:-dev}"
outdir="$(realpath -m "${2:-$ROOT/cdk/cdk.out}")"
case "$env_name" in dev|staging|prod) ;; *) die "unknown environment '$env_name': use dev, staging or prod" ;; esac

setup_start

log "checking the topic registry"
cargo run --quiet -p eventfabric-registry --bin registry -- check
cargo run --quiet -p eventfabric-registry --bin registry -- export --check

log "waiting for the tools (scripts/setup.sh)"
setup_wait

log "synthesizing $env_name into ${outdir#"$ROOT"/} (builds the Rust functions)"
start=$(date +%s)
(cd "$ROOT/cdk" && cdk synth --quiet -c env="$env_name" --output "$outdir")
log "synthesized in $(( $(date +%s) - start )) s"
python3 "$ROOT/scripts/synth_summary.py" "$outdir"
