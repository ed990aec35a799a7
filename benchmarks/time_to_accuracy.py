"""Time to accuracy of training runs: the wall seconds each run needed to first reach its final selected
val (PublicTest) figure, or a target you give, from its `history.json` — not only seconds per epoch.

    python benchmarks/time_to_accuracy.py runs/fer/classifier_full runs/fer/inpainter_unet
    python benchmarks/time_to_accuracy.py runs/fer/classifier_full --target 0.67

For a classifier the score is `val_accuracy` (higher is better); for a generator `val_psnr_hole`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SCORES = ("val_accuracy", "val_psnr_hole", "val_iou")


def time_to(history: list[dict], key: str, target: float) -> tuple[float | None, int | None]:
    """(seconds, epoch) when `key` first reached `target`; (None, None) if it never did."""
    elapsed = 0.0
    for record in history:
        elapsed += record.get("seconds", record.get("train_seconds", 0.0))
        if record.get(key) is not None and record[key] >= target:
            return elapsed, record["epoch"]
    return None, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders (holding history.json)")
    parser.add_argument("--target", type=float, help="the score to reach (default: each run's best)")
    args = parser.parse_args()
    print("| run | score | target | reached at epoch | seconds | epochs run | total seconds |\n"
          "|---|---|---|---|---|---|---|")
    for run in map(Path, args.runs):
        history = json.loads((run / "history.json").read_text())
        key = next((k for k in SCORES if k in history[-1]), None)
        if key is None:
            print(f"| {run} | no val score in history.json | | | | | |")
            continue
        target = args.target if args.target is not None else max(r[key] for r in history)
        seconds, epoch = time_to(history, key, target)
        total = sum(r.get("seconds", r.get("train_seconds", 0.0)) for r in history)
        shown = f"{seconds:.1f}" if seconds is not None else "never"
        print(f"| {run} | {key} | {target:.4f} | {epoch or '-'} | {shown} | {len(history)} | {total:.1f} |")


if __name__ == "__main__":
    main()
