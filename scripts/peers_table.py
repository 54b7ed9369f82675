#!/usr/bin/env python3
"""The summary table of `scripts/compare-peers.sh` (standard library only).

Reads the benchmark's TSV rows (`engine<TAB>workload<TAB>threads<TAB>step_us<TAB>fwd_us<TAB>
bwd_us`, header lines skipped) and the peak rows (`peak<TAB>isa<TAB>threads<TAB>gflops`) from
the files named (or stdin), and prints a Markdown table: per workload and thread count, each
engine's step time, the best peer, tapegrad's speed-up over it (best peer's step / tapegrad's)
and, for the dense workloads, each of those two as a share of the measured FMA peak of the
widest instruction set measured (avx512 before avx2). When an
engine has several rows for one workload and thread count, the fastest counts (a neighbour on
a shared machine can slow a run, never speed it up).

    python3 scripts/peers_table.py rows.tsv
"""

import sys

WORKLOADS = ["seed", "seed-accum2", "mlp-mnist", "mlp-wide", "deep-narrow", "scalar-mlp"]
EXTRA = ["adam-wide", "train-digits"]
ISAS = ["avx512", "avx2"]  # widest first
ENGINES = ["tapegrad", "pytorch", "candle", "burn", "dfdx", "micrograd"]
# Layer sizes and batch of the dense workloads whose FLOP rate is compared with the peak.
DENSE = {"mlp-mnist": ([784, 256, 256, 10], 64), "mlp-wide": ([1024, 1024, 1024, 1024], 256)}


def step_flops(sizes, batch):
    """FLOPs of one training step: forward 2·B·Σ in·out; backward twice that, minus the input
    gradient of the first layer (no one needs it)."""
    fwd = 2 * batch * sum(a * b for a, b in zip(sizes, sizes[1:]))
    return fwd + 2 * fwd - 2 * batch * sizes[0] * sizes[1]


def parse(lines):
    """(best step_us per (engine, workload, threads), peak GFLOP/s per (isa, threads))."""
    steps, peaks = {}, {}
    for n, line in enumerate(lines, 1):
        f = line.rstrip("\n").split("\t")
        if not line.strip() or f[0] == "engine":
            continue
        if f[0] == "peak" and len(f) == 4:
            key, g = (f[1], int(f[2])), float(f[3])
            peaks[key] = max(peaks.get(key, 0.0), g)
            continue
        if len(f) != 6:
            raise ValueError(f"line {n}: expected 6 tab-separated fields, got {len(f)}: {line!r}")
        key = (f[0], f[1], int(f[2]))
        step = float(f[3])
        steps[key] = min(steps.get(key, step), step)
    return steps, peaks


def fmt_us(v):
    if v is None:
        return "–"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}" if v < 10 else f"{v:.1f}"


def fmt_ratio(r):
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x"


def table(steps, all_peaks):
    out = []
    isas = sorted({i for i, _ in all_peaks}, key=lambda i: (ISAS.index(i) if i in ISAS else len(ISAS), i))
    # The share of peak is against the widest instruction set measured.
    peaks = {t: g for (i, t), g in all_peaks.items() if isas and i == isas[0]}
    engines = [e for e in ENGINES if any(k[0] == e for k in steps)]
    engines += sorted({k[0] for k in steps} - set(ENGINES))
    peers = [e for e in engines if e != "tapegrad"]
    head = ["workload", "threads"] + engines + ["best peer", "best peer / tapegrad", "tapegrad % of peak", "best peer % of peak"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + " --- |" * len(head))
    names = WORKLOADS + sorted({k[1] for k in steps} - set(WORKLOADS) - set(EXTRA))
    for w in names:
        for t in sorted({k[2] for k in steps if k[1] == w}):
            row = [w, str(t)] + [fmt_us(steps.get((e, w, t))) for e in engines]
            timed = [(steps[(p, w, t)], p) for p in peers if (p, w, t) in steps]
            best = min(timed) if timed else None
            tg = steps.get(("tapegrad", w, t))
            row.append(best[1] if best else "–")
            row.append(fmt_ratio(best[0] / tg) if best and tg else "–")
            for v in (tg, best[0] if best else None):
                if w in DENSE and v and t in peaks:
                    gflops = step_flops(*DENSE[w]) / (v * 1e-6) / 1e9
                    row.append(f"{100 * gflops / peaks[t]:.0f}%")
                else:
                    row.append("–")
            out.append("| " + " | ".join(row) + " |")
    extra = sorted({(k[1], k[2]) for k in steps if k[1] in EXTRA}, key=lambda x: (EXTRA.index(x[0]), x[1]))
    if extra:
        out.append("")
        out.append("| benchmark | threads | tapegrad | pytorch | pytorch / tapegrad | images/s tapegrad | images/s pytorch |")
        out.append("| --- | --- | --- | --- | --- | --- | --- |")
        for w, t in extra:
            tg, pt = steps.get(("tapegrad", w, t)), steps.get(("pytorch", w, t))
            ips = [f"{64e6 / v:,.0f}" if w == "train-digits" and v else "–" for v in (tg, pt)]
            ratio = fmt_ratio(pt / tg) if tg and pt else "–"
            out.append(f"| {w} | {t} | {fmt_us(tg)} | {fmt_us(pt)} | {ratio} | {ips[0]} | {ips[1]} |")
    if isas:
        out.append("")
        per_isa = []
        for i in isas:
            ts = sorted(t for j, t in all_peaks if j == i)
            per_isa.append(f"{i} " + ", ".join(f"{all_peaks[(i, t)]:.1f} GFLOP/s on {t} thread{'s' if t > 1 else ''}" for t in ts))
        out.append(
            "FMA peak: "
            + "; ".join(per_isa)
            + f" (% of peak: against {isas[0]}). FLOPs per step: "
            + ", ".join(f"{w} {step_flops(*DENSE[w]) / 1e6:,.1f} M" for w in DENSE)
            + "."
        )
    return "\n".join(out)


def main():
    lines = []
    for path in sys.argv[1:] or ["-"]:
        lines += (sys.stdin if path == "-" else open(path, encoding="utf-8")).readlines()
    try:
        steps, peaks = parse(lines)
    except ValueError as e:
        print(f"peers_table: {e}", file=sys.stderr)
        return 1
    print(table(steps, peaks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
