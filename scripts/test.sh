#!/usr/bin/env bash
# Installs what the test suite needs on a fresh machine, then runs every check CI runs:
# formatting, lints, and the whole test suite (unit, integration, property and crash tests).
#
#   ./scripts/test.sh            # everything
#   ./scripts/test.sh -p sightline-log   # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain components"
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
cargo --version

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "cargo test"
cargo test --workspace --locked "$@"
