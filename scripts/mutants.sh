#!/usr/bin/env bash
# Mutation testing of chosen source files: scripts/mutants.sh FILE... [-- CARGO-MUTANTS-ARGS]
#   scripts/mutants.sh crates/nn/src/accumulate.rs crates/nn/src/optim.rs
# Each mutant is built and the tests of its package run (settings: .cargo/mutants.toml).
# One job at a time and a low priority, so a shared machine stays usable; results go to
# mutants.out/ (caught.txt, missed.txt, timeout.txt, unviable.txt); see docs/testing.md.
# Needs cargo-mutants: `cargo install --locked cargo-mutants`.
set -euo pipefail
cd "$(dirname "$0")/.."
files=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  files+=(-f "$1")
  shift
done
[ "${1:-}" = "--" ] && shift
if [ ${#files[@]} -eq 0 ]; then
  echo "usage: scripts/mutants.sh FILE... [-- CARGO-MUTANTS-ARGS]" >&2
  exit 2
fi
exec nice cargo mutants --workspace --jobs "${MUTANTS_JOBS:-1}" "${files[@]}" "$@"
