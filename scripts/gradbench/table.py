#!/usr/bin/env python3
"""One table from run.sh's lines (EVAL TOOL OUTCOME valid=V/N eval_ms=T min_ms=M wall_s=W).

Usage: table.py RESULTS

Per eval: each tool's outcome and fastest-run time (ms, summed over workloads), then
tapegrad's time divided by PyTorch's and by manual's, and the geometric mean of
tapegrad / manual over the evals where both validated.
"""

import math
import sys


def main():
    res = {}
    tools = []
    for line in open(sys.argv[1]):
        f = line.split()
        if len(f) < 6 or not f[4].startswith("eval_ms="):
            continue
        ev, tool, outcome = f[0], f[1], f[2]
        ms = float(f[5].split("=")[1])
        res[(ev, tool)] = (outcome, ms)
        if tool not in tools:
            tools.append(tool)
    evals = []
    for ev, _ in res:
        if ev not in evals:
            evals.append(ev)
    head = "| eval | " + " | ".join(f"{t} (ms)" for t in tools)
    ratios = [t for t in tools if t != "tapegrad"]
    head += "".join(f" | tapegrad / {t}" for t in ratios) + " |"
    print(head)
    print("|" + " --- |" * (1 + len(tools) + len(ratios)))
    logs = []
    for ev in evals:
        cells = []
        for t in tools:
            o = res.get((ev, t))
            cells.append("–" if o is None else (f"{o[1]:,.2f}" if o[0] == "validated" else o[0]))
        for t in ratios:
            a, b = res.get((ev, "tapegrad")), res.get((ev, t))
            if a and b and a[0] == b[0] == "validated" and b[1] > 0:
                r = a[1] / b[1]
                cells.append(f"{r:.2f}")
                if t == "manual" and a[1] > 0:
                    logs.append(math.log(r))
            else:
                cells.append("–")
        print(f"| {ev} | " + " | ".join(cells) + " |")
    if logs:
        print(f"\ngeometric mean of tapegrad / manual over {len(logs)} evals: {math.exp(sum(logs) / len(logs)):.2f}")


if __name__ == "__main__":
    main()
