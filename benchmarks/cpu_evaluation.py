"""CPU evaluation speed of the shipped models, as a user meets it: whole `unveil` commands, timed from
the outside (process start, imports and data loading included), median of several runs.

    python benchmarks/cpu_evaluation.py --data ../shared/data/fer2013          # the targets' setting
    python benchmarks/cpu_evaluation.py                                         # synthetic faces instead

Targets (issue "Ship the FER2013 models", this project's 2-core CPU): eval-classifier on PrivateTest
<= 10 s, <= 20 s with TTA; compare with all conditions, the cross matrix and the gallery <= 2 min.
The decoded-data cache is warmed first, so the figures are what a second run costs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = [  # (what, arguments after `unveil`, target in seconds)
    ("eval-classifier, PrivateTest", ["eval-classifier", "classifier_full", "--split", "test"], 10),
    ("eval-classifier, PrivateTest, TTA (10 views)", ["eval-classifier", "classifier_full", "--split", "test",
                                                      "--tta"], 20),
    ("compare: 8 conditions, cross matrix, gallery", ["compare", "--split", "test", "--cross", "classifier_occluded",
                                                      "--no-wandb"], 120),
]


def run(args: list[str], data: str, out: Path) -> float:
    command = [sys.executable, "-m", "unveil.pipelines.cli", *args, "--data", data, "--out", str(out)]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{proc.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="synthetic:n=36000,seed=0",
                        help="FER2013 (../shared/data/fer2013) for the targets; default: as many synthetic faces")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "unveil.pipelines.cli", "data", "info", args.data],
                       capture_output=True, check=True)  # decode once: the cache serves every run after
        print(f"data: {args.data}; {args.repeats} runs each, median wall seconds of the whole command\n")
        print("| what | median s | min-max s | target s | met |\n|---|---|---|---|---|")
        for what, case, target in CASES:
            times = [run(case, args.data, Path(tmp) / f"out{i}") for i in range(args.repeats)]
            median = statistics.median(times)
            print(f"| {what} | {median:.1f} | {min(times):.1f}-{max(times):.1f} | {target} | "
                  f"{'yes' if median <= target else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
