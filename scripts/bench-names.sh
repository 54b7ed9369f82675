#!/usr/bin/env bash
# examples/train_names' steps against PyTorch's, in one run: run 1 (names-full, 32 names in
# one batch) and run 3 (names-tokens, the same batch as 32 micro-batches of one name with the
# token-count scaling), tapegrad (`cargo bench --bench workloads`) and PyTorch
# (benches/peers/python/workloads.py pytorch-extra) interleaved ROUNDS times on one thread;
# prints every TSV row (engine, workload, threads, step_us, ...), then the best of each and
# the ratio run 3 / run 1.
#
#   scripts/bench-names.sh                        # PEERS_PYTHON=python with torch 2.15
#   ROUNDS=5 PEERS_PYTHON=/path/to/python scripts/bench-names.sh
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PEERS_PYTHON:-python3}
rounds=${ROUNDS:-3}
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
cargo bench --bench workloads --no-run -q 2>/dev/null
for _ in $(seq "$rounds"); do
  for w in names-full names-tokens; do
    BENCH_THREADS=1 cargo bench -q --bench workloads -- "$w" 2>/dev/null | grep "^tapegrad" | tee -a "$rows"
  done
  BENCH_THREADS=1 "$py" benches/peers/python/workloads.py pytorch-extra names-full names-tokens | grep "^pytorch" \
    | tee -a "$rows"
done
echo "# best of $rounds (µs per step):"
sort -t$'\t' -k1,2 -k4,4g "$rows" | awk -F'\t' '!seen[$1 FS $2]++ { best[$1 FS $2] = $4; print $1 "\t" $2 "\t" $4 }
  END { n = split("tapegrad pytorch", es, " ")
        for (i = 1; i <= n; i++) { f = best[es[i] FS "names-full"]; t = best[es[i] FS "names-tokens"]
          if (f > 0) printf "# %s: run 3 / run 1 = %.2f\n", es[i], t / f } }'
