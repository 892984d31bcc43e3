#!/usr/bin/env bash
# Runs every test: rustfmt and clippy, actionlint and the workflow rules, registry rules and generated code, Rust unit and handler tests, CDK assertion tests, template
# snapshots (insta) and cfn-lint for all environments, the moto contract tests, and one full
# validated synth (cdk-nag + Rust build) of dev with its asset checks.
#   scripts/test.sh
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"

setup_start

log "Rust: formatting and lints"
cargo fmt --all --check
cargo clippy --quiet --workspace --all-targets -- -D warnings

log "registry: rules and generated manifest"
cargo run --quiet -p eventfabric-registry --bin registry -- check
cargo run --quiet -p eventfabric-registry --bin registry -- export --check
# Schema evolution against REGISTRY_BASE (CI sets the pull request's base), else the branch
# point from origin/main, else the previous commit.
base="${REGISTRY_BASE:-}"
if [ -z "$base" ]; then
  if git rev-parse -q --verify origin/main >/dev/null \
    && [ "$(git merge-base HEAD origin/main)" != "$(git rev-parse HEAD)" ]; then
    base=$(git merge-base HEAD origin/main)
  elif git rev-parse -q --verify HEAD~1 >/dev/null; then
    base=HEAD~1
  fi
fi
if [ -n "$base" ]; then
  cargo run --quiet -p eventfabric-registry --bin registry -- evolve --base "$base"
else
  echo "registry evolve: no base revision (first commit or shallow clone); skipped"
fi

log "Rust: unit and handler tests"
cargo test --quiet

log "waiting for the tools (scripts/setup.sh)"
setup_wait

log "workflows: actionlint and the promotion rules (tests/workflows/check_workflows.py)"
actionlint
python tests/workflows/check_workflows.py

log "registry: generated Rust and TypeScript payload types"
"$ROOT/scripts/typegen.sh" --check

log "CDK: type check and assertion tests"
(cd cdk && tsc --noEmit && node --import tsx --test test/*.test.ts)

templates="$CARGO_TARGET_DIR/templates"
log "CDK: templates of every environment (bundling skipped) -> $templates"
rm -rf "$templates"
(cd cdk && CDK_VALIDATION=false node --import tsx scripts/synth-templates.ts "$templates")

log "cfn-lint: every template (settings and ignored warnings: .cfnlintrc.yaml)"
cfn-lint "$templates"/*/assembly-*/*.template.json

log "template snapshots and moto contract tests"
# INSTA_WORKSPACE_ROOT: snapshots are this checkout's even when cargo reuses a test binary built
# in another one (the target dir is shared between clones, and the binary would carry that
# clone's path).
# Each contract test runs its own moto server and mostly waits (for messages, and for the
# stray ones that must not come): eight at a time instead of one per core.
# The end-to-end tests run function binaries as processes (tests/standin): build them first.
# Every moto server records the requests it serves (EVENTFABRIC_IAM_CALLS_DIR): the IAM check
# below evaluates the handlers' calls against their synthesized roles.
calls="$CARGO_TARGET_DIR/iam-calls"
rm -rf "$calls"
cargo build --quiet -p realtime --bin realtime -p tunnel --bin tunnel
INSTA_WORKSPACE_ROOT="$PWD" EVENTFABRIC_TEMPLATES_DIR="$templates" EVENTFABRIC_IAM_CALLS_DIR="$calls" \
  cargo test --quiet -p template-snapshots -p contract-tests -p eventfabric-standin -- --test-threads=8

log "IAM: each role allows exactly the calls its handler made in the contract tests (cdk/iam/check-calls.ts)"
(cd cdk && node --import tsx iam/check-calls.ts "$templates/dev" "$calls" "$CARGO_TARGET_DIR/iam-report.json")

log "main job: validated synth of dev with the Rust build"
"$ROOT/scripts/synth.sh" dev "$CARGO_TARGET_DIR/cdk.out.dev"

log "all tests passed"
