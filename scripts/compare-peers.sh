#!/usr/bin/env bash
# Benchmarks tapegrad against its peers on this machine, in one run: PyTorch and micrograd
# (benches/peers/python/workloads.py), candle, burn and dfdx (the Cargo project in
# benches/peers/), and tapegrad itself (`cargo bench --bench workloads`), with the workloads
# and timing method of WORKLOADS.md, on 1 and 2 threads, interleaved (each round runs every
# engine once per thread count, so a slow minute on a shared machine hits them alike). It
# also measures the f32 FMA peak (`tapegrad_bench::peak`, run by benches/peers/src/bin/peak.rs) and PyTorch's Adam step and
# digits training (`pytorch-extra`).
#
# Prints every TSV row (engine, workload, threads, step_us, fwd_us, bwd_us), then the summary
# table of scripts/peers_table.py; a progress line per engine goes to stderr. The rows are also
# kept in target/peers/rows.tsv.
#
#   scripts/compare-peers.sh                 # full run (about 20 minutes a round on 2 cores)
#   QUICK=1 scripts/compare-peers.sh         # smoke run: 3 short samples per figure
#
# Environment:
#   QUICK=1          smoke run
#   ROUNDS=N         interleaved rounds (default 1); the table keeps each engine's fastest
#   THREADS="1 2"    thread counts
#   ENGINES="..."    subset of: tapegrad pytorch micrograd candle burn dfdx
#   PEERS_PYTHON=P   a Python that already has torch and micrograd (skips the virtualenv)
#   PEERS_VENV=DIR   where the virtualenv goes (default target/peers-venv)
#   NICE=N           run builds and benchmarks under `nice -n N` (to share a busy machine)
#
# Installs what it needs: a virtualenv with torch and micrograd from the Python package
# registry (once; torch's Linux wheel brings its CUDA libraries, several GB), and the Rust
# peers built by cargo into benches/peers/target (the first build takes minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

threads_list=${THREADS:-1 2}
engines=${ENGINES:-tapegrad pytorch micrograd candle burn dfdx}
rounds=${ROUNDS:-1}
run=()
if [[ -n "${NICE:-}" ]]; then run=(nice -n "$NICE"); fi
out_dir=$root/target/peers
mkdir -p "$out_dir"
rows=$out_dir/rows.tsv
: >"$rows"
failed=()

say() { echo "compare-peers: $*" >&2; }
has() { [[ " $engines " == *" $1 "* ]]; }

# ---- install
if has pytorch || has micrograd; then
  if [[ -n "${PEERS_PYTHON:-}" ]]; then
    py=$PEERS_PYTHON
  else
    venv=${PEERS_VENV:-$root/target/peers-venv}
    py=$venv/bin/python
    if ! "$py" -c 'import torch, micrograd' 2>/dev/null; then
      say "creating the virtualenv $venv (torch 2.15.0, micrograd 0.1.0, numpy)"
      python3 -m venv "$venv"
      "$py" -m pip install -q --upgrade pip >&2
      "$py" -m pip install -q torch==2.15.0 micrograd==0.1.0 numpy >&2
    fi
  fi
  say "python: $("$py" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__)')"
fi

say "building the Rust peers and the peak program (benches/peers, release)"
"${run[@]}" cargo build -q --release --manifest-path benches/peers/Cargo.toml >&2
peers_bin=$(cargo metadata -q --format-version 1 --no-deps --manifest-path benches/peers/Cargo.toml \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release
if has tapegrad; then
  say "building tapegrad's workload benchmark"
  "${run[@]}" cargo bench -q --bench workloads --no-run >&2 2>/dev/null || "${run[@]}" cargo bench --bench workloads --no-run >&2
fi

# ---- measure
printf 'engine\tworkload\tthreads\tstep_us\tfwd_us\tbwd_us\n'
say "measuring the FMA peak"
"${run[@]}" "$peers_bin/peak" | tee -a "$rows"

run_engine() { # prints the engine's rows (BENCH_THREADS set by the caller)
  case $1 in
    tapegrad) "${run[@]}" cargo bench -q --bench workloads ;;
    pytorch | pytorch-extra | micrograd) "${run[@]}" "$py" benches/peers/python/workloads.py "$1" ;;
    candle | burn | dfdx) "${run[@]}" "$peers_bin/$1" ;;
  esac
}

for r in $(seq "$rounds"); do
  for t in $threads_list; do
    list=$engines
    if has pytorch; then list="$list pytorch-extra"; fi
    for e in $list; do
      # micrograd is pure Python on one thread: its 2-thread rows would repeat the 1-thread ones.
      if [[ $e == micrograd && $t != 1 ]]; then continue; fi
      say "round $r/$rounds, $t thread(s): $e"
      start=$SECONDS
      export BENCH_THREADS=$t RAYON_NUM_THREADS=$t
      if ! run_engine "$e" 2>"$out_dir/$e.err" | grep -v '^engine' | tee -a "$rows"; then
        say "$e failed on $t thread(s); its stderr: $out_dir/$e.err"
        failed+=("$e/$t")
      fi
      say "  $e took $((SECONDS - start)) s"
    done
  done
done

echo
python3 scripts/peers_table.py "$rows"
if ((${#failed[@]})); then
  say "failed: ${failed[*]}"
  exit 1
fi
