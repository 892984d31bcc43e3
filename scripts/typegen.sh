#!/usr/bin/env bash
# Regenerates the payload types of every registry topic from schemas/topics:
#   Rust:       lambdas/shared/topics/src/generated.rs   (typify)
#   TypeScript: schemas/generated/topics.ts              (json-schema-to-typescript)
#   scripts/typegen.sh           # write both
#   scripts/typegen.sh --check   # fail if either is stale (the test command runs this)
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
cargo run --quiet -p typegen -- "$@"
(cd cdk && node --import tsx scripts/typegen.ts "$@")
