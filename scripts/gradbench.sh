#!/usr/bin/env bash
# tapegrad on GradBench (github.com/gradbench/gradbench), without Docker or internet: runs the
# evals against tapegrad (crates/gradbench), the PyTorch tool and the hand-written C++
# reference `manual` on this machine, one tool after the other, and prints one table.
#
# Usage: scripts/gradbench.sh GRADBENCH_GIT_DIR [options] [EVAL ...]
#   GRADBENCH_GIT_DIR   a git directory holding GradBench: a clone (its .git) or a bare
#                       snapshot; extracted once into $GRADBENCH_DIR
#                       (default ~/.cache/tapegrad-gradbench), where the C++ reference and
#                       GradBench's own command line are built (scripts/gradbench/setup.sh)
#   --tools "T ..."     which tools, among tapegrad pytorch manual (default: all three)
#   --size small|default   workloads (default small; see scripts/gradbench/run.sh)
#                       default: upstream's sizes; tapegrad needs about 8 minutes for
#                       all twelve and 4.2 GiB for ode, the PyTorch tool hours (use
#                       --tools "tapegrad manual" --min-runs 1; docs/gradbench.md)
#   --min-runs N        runs of every workload (default 3; the table shows the fastest)
#   --logs DIR          where the logs go (default ./gradbench-logs)
#   EVAL ...            default: all twelve
# Environment: PY, a Python with numpy, pydantic, dataclasses-json and scipy (torch for the
#   PyTorch tool); default python3. Everything runs on one thread (THREADS=1).
# The table: per eval and tool, the outcome and the sum over workloads of the fastest run
# (ms), and tapegrad's time over the other tools'.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/scripts/gradbench
[ $# -ge 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
export MIRROR=$1; shift
[ -d "$MIRROR" ] || { echo "gradbench.sh: $MIRROR is not a directory" >&2; exit 2; }
TOOLS="tapegrad pytorch manual" SIZE=small MINRUNS=3 LOGS=$PWD/gradbench-logs EVALS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tools) TOOLS=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --min-runs) MINRUNS=$2; shift 2 ;;
    --logs) LOGS=$2; shift 2 ;;
    -*) echo "gradbench.sh: unknown option $1" >&2; exit 2 ;;
    *) EVALS+=("$1"); shift ;;
  esac
done
[ ${#EVALS[@]} -gt 0 ] || EVALS=(hello lse llsq gmm kmeans det ode lstm ba ht particle saddle)
export THREADS=1
(cd "$ROOT" && cargo build --release -q -p tapegrad-gradbench)
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for tool in $TOOLS; do
  case "$tool" in
    tapegrad) args=(--tool "$ROOT/target/release/tapegrad-gradbench" --name tapegrad) ;;
    pytorch|manual) args=(--tool "$tool") ;;
    *) echo "gradbench.sh: unknown tool $tool" >&2; exit 2 ;;
  esac
  for e in "${EVALS[@]}"; do
    # a tool's evals.txt lists the evals it implements (first word of a line)
    list="${GRADBENCH_DIR:-$HOME/.cache/tapegrad-gradbench}/tools/$tool/evals.txt"
    if [ "$tool" != tapegrad ] && [ -f "$list" ] && ! awk -v e="$e" '$1 == e { found = 1 } END { exit !found }' "$list"; then
      continue
    fi
    "$HERE/run.sh" "${args[@]}" --size "$SIZE" --min-runs "$MINRUNS" --logs "$LOGS" "$e" | tee -a "$results" || true
  done
done
echo
"${PY:-python3}" "$HERE/table.py" "$results"
