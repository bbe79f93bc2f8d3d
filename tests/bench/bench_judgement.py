"""Judgement benchmark: the drift pack against the README's drift signal table on seeded random
portfolios (tests/judgement/). Each seed writes a workspace, runs `tether plan` on it as of
its date with a fresh state store, and compares the findings with the planted truth.

    python tests/bench/bench_judgement.py [--seeds 200] [--start 0] [--examples 3] [--mutants]

Prints per signal TP, FP, FN, precision and recall (guardrail split into its task and KPI
findings), the overall precision and recall, writes per healthy item (planned writes on items
with no expected task signal, per such item) and the time taken; then the first FP/FN
examples of each signal with the finding's reason or why it was expected. `--mutants` also
counts, per plausible misreading of the definitions (tests/judgement/mutants.py), how many
scored pairs it would get wrong on these seeds: how sharp the benchmark is.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the judgement package

from judgement.generator import generate  # noqa: E402
from judgement.mutants import MUTANTS, coverage  # noqa: E402
from judgement.score import Report, format_report, score  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=200, help="how many portfolios (default 200)")
    parser.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--examples", type=int, default=3, help="FP/FN examples per signal")
    parser.add_argument("--mutants", action="store_true", help="also count what each "
                        "misreading of the definitions would get wrong")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = Report()
    caught = dict.fromkeys(MUTANTS, 0)
    with tempfile.TemporaryDirectory(prefix="bench-judgement-") as tmp:
        for seed in range(args.start, args.start + args.seeds):
            portfolio = generate(seed, Path(tmp) / f"seed-{seed}")
            report.add(score(portfolio))
            if args.mutants:
                for name, n in coverage(portfolio).items():
                    caught[name] += n
    report.seconds = time.perf_counter() - started
    print(f"seeds {args.start}..{args.start + args.seeds - 1}")
    print(format_report(report, args.examples))
    if args.mutants:
        print("\nmisreading                 pairs it would get wrong")
        for name, n in caught.items():
            print(f"{name:<26} {n:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
