#!/usr/bin/env bash
# Prepares a Docker-free, offline GradBench in ./upstream (idempotent; run.sh calls it).
#
#  1. extracts the GradBench snapshot from MIRROR into GRADBENCH_DIR,
#     skipping the three blobs the mirror lacks (two ht hand12 files, lstm_full.txt)
#  2. cpp/json.hpp: upstream wgets nlohmann/json v3.11.3; here the Debian package
#     nlohmann-json3-dev (3.11.2) is fetched with `apt-get download` and unpacked
#     into upstream/cpp/nlohmann/, with a one-line json.hpp shim including it
#  3. builds the C++ reference tool `manual` (validation oracle of most evals)
#  4. builds the official intermediary CLI (crates/gradbench) with cargo
#  5. writes evals/lstm/data/lstm_full.txt (absent from the mirror): the first 4096
#     characters of ADBench's lstm_full.txt (Shakespeare's sonnets, from ADBench's
#     data/lstm/lstm_l2_c4096.txt), twice -> 8192 characters. Same char_bits (14)
#     as upstream, so every lstm workload has upstream's shapes
#  6. checks the Python (PY) has numpy, pydantic, dataclasses-json, scipy, torch
#     and pip-installs the first four if missing
#
#   PY=/path/to/python   (default python3; a virtualenv with numpy, pydantic,
#                        dataclasses-json, scipy, and torch for the pytorch tool)
#   MIRROR=DIR           a git directory holding GradBench (a clone, or the bare git
#                        directory of a stored snapshot of github.com/gradbench/gradbench)
#   GRADBENCH_DIR=DIR    where the snapshot is extracted and built
#                        (default ~/.cache/tapegrad-gradbench)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
UP=${GRADBENCH_DIR:-$HOME/.cache/tapegrad-gradbench}
PY=${PY:-python3}
MIRROR=${MIRROR:-}
say() { echo "setup: $*" >&2; }

# 1. snapshot
if [ ! -f "$UP/README.md" ]; then
  [ -n "$MIRROR" ] && [ -d "$MIRROR" ] || { say "set MIRROR to a git directory holding GradBench (nothing extracted yet in $UP)"; exit 2; }
  say "extracting $(git -C "$MIRROR" rev-parse --short HEAD) into upstream/"
  mkdir -p "$UP"
  excl=()
  while IFS=$'\t' read -r meta path; do
    git -C "$MIRROR" cat-file -e "${meta##* }" 2>/dev/null || excl+=(":!$path")
  done < <(git -C "$MIRROR" ls-tree -r HEAD)
  [ ${#excl[@]} -eq 0 ] || say "mirror lacks ${#excl[@]} blobs: ${excl[*]}"
  git -C "$MIRROR" archive HEAD -- . "${excl[@]}" 2>/dev/null | tar -x -C "$UP"
fi

# 2. json.hpp
if [ ! -f "$UP/cpp/json.hpp" ]; then
  say "cpp/json.hpp from Debian nlohmann-json3-dev"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download nlohmann-json3-dev >/dev/null)
  dpkg -x "$tmp"/nlohmann-json3-dev_*.deb "$tmp/x"
  rm -rf "$UP/cpp/nlohmann"
  cp -r "$tmp/x/usr/include/nlohmann" "$UP/cpp/nlohmann"
  printf '#pragma once\n// Shim (offline setup): Debian nlohmann-json3-dev headers in cpp/nlohmann/.\n#include "nlohmann/json.hpp"\n' >"$UP/cpp/json.hpp"
  rm -rf "$tmp"
fi

# 3. manual (C++ reference tool); evals call tools/manual/bin/<eval> directly
if [ ! -x "$UP/tools/manual/bin/ode" ]; then
  say "building tools/manual (about 40 s)"
  nice -n 10 make -s -j1 -C "$UP/tools/manual" >&2
fi

# 4. the intermediary CLI
if [ ! -x "$UP/target/release/gradbench" ]; then
  say "building the gradbench CLI (about 1 min)"
  (cd "$UP" && nice -n 10 cargo build -q --release -j1 -p gradbench --locked >&2)
fi

# 5. lstm text
if [ ! -s "$UP/evals/lstm/data/lstm_full.txt" ]; then
  mkdir -p "$UP/evals/lstm/data"
  "$PY" - "$HERE/sonnets-prefix.txt" "$UP/evals/lstm/data/lstm_full.txt" <<'EOF'
import sys
t = open(sys.argv[1], encoding="utf8").read()[:-1]  # heredoc-style trailing newline
assert len(t) == 4096, len(t)
open(sys.argv[2], "w", encoding="utf8").write(t + t)
EOF
fi

# 6. Python packages
if ! "$PY" -c 'import numpy, pydantic, dataclasses_json, scipy' 2>/dev/null; then
  say "pip install pydantic dataclasses-json scipy numpy into $PY"
  "$PY" -m pip install -q pydantic dataclasses-json scipy numpy >&2
fi
"$PY" -c 'import torch' 2>/dev/null || say "warning: $PY has no torch (needed only by the pytorch tool)"
exit 0
