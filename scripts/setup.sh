#!/usr/bin/env bash
# Installs what the project needs into project-local places; does nothing that is already done.
#   .tools/venv        cargo-lambda (with zig), cfn-lint, moto[server]  (scripts/requirements-tools.txt;
#                      $EVENTFABRIC_TOOLS/venv when that is set)
#   cdk/node_modules   aws-cdk-lib, aws-cdk CLI, cdk-nag, tsx, typescript (cdk/package-lock.json)
# Needs: cargo (Rust ≥ 1.85), node ≥ 20 with npm, python3 ≥ 3.9.
set -euo pipefail
. "$(dirname "$0")/env.sh"

command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup (https://rustup.rs)"
command -v node >/dev/null || die "node is missing: install Node.js 20 or newer"
command -v python3 >/dev/null || die "python3 is missing: install Python 3.9 or newer"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "node $node_major is too old: the CDK app needs Node.js 20 or newer"

# The content only: a stamp naming the file path would differ in every clone.
stamp() { cat "$@" | sha256sum | cut -c1-16; }

# The two installs are downloads and unpacking: they run side by side.
python_tools() {
  local want
  want=$(stamp "$ROOT/scripts/requirements-tools.txt")
  if [ "$(cat "$TOOLS/venv/.stamp" 2>/dev/null)" != "$want" ]; then
    log "installing Python tools into $TOOLS/venv"
    rm -rf "$TOOLS/venv"
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/scripts/requirements-tools.txt"
    echo "$want" > "$TOOLS/venv/.stamp"
  fi
}
cdk_packages() {
  local want
  want=$(stamp "$ROOT/cdk/package-lock.json")
  if [ "$(cat "$ROOT/cdk/node_modules/.stamp" 2>/dev/null)" != "$want" ]; then
    log "installing CDK packages (npm ci)"
    (cd "$ROOT/cdk" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$ROOT/cdk/node_modules/.stamp"
  fi
}
python_tools &
python_pid=$!
cdk_packages
wait "$python_pid" || die "installing the Python tools (scripts/requirements-tools.txt) failed; see above"
