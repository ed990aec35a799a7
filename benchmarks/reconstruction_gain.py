"""Is reconstructing worth it? From `unveil compare --json` reports (the judge on every condition, the upper-half
reader as the cross classifier): per report, the reader on the occluded face, the judge on each reconstruction,
the best reconstruction's gain over the reader, hole PSNR / SSIM, and the one reading.

    python benchmarks/reconstruction_gain.py runs/photo-generators/val-*.json [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NOT_RECONSTRUCTIONS = ("occluded", "full")


def gains(report: dict) -> dict:
    """The reader's accuracy on the occluded faces and each reconstruction's judge accuracy and hole scores."""
    cross = report["cross"]
    reader = next(k for k, row in enumerate(cross["rows"]) if k > 0)   # the first classifier after the judge
    occluded = cross["accuracy"][reader][cross["columns"].index("occluded")]
    rows = {name: {"judge": c["accuracy"], "psnr_hole": c.get("psnr_hole"), "ssim_hole": c.get("ssim_hole")}
            for name, c in report["conditions"].items() if name not in NOT_RECONSTRUCTIONS}
    best = max(rows, key=lambda name: rows[name]["judge"])
    return {"data": report["data"]["source"] if isinstance(report["data"], dict) else report["data"],
            "n": report.get("n"), "reader": occluded, "full": report["conditions"]["full"]["accuracy"],
            "one_reading": report.get("one_reading", {}).get("accuracy"), "reconstructions": rows,
            "best": best, "best_minus_reader": round(rows[best]["judge"] - occluded, 4)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("reports", nargs="+", type=Path)
    p.add_argument("--json")
    args = p.parse_args()
    out = {}
    for path in args.reports:
        g = out[path.stem] = gains(json.loads(path.read_text()))
        one = "-" if g["one_reading"] is None else f"{100 * g['one_reading']:.1f} %"
        print(f"\n{path.stem}: reader {100 * g['reader']:.1f} %, full {100 * g['full']:.1f} %, one reading {one}")
        for name, r in sorted(g["reconstructions"].items(), key=lambda kv: -kv[1]["judge"]):
            holes = (f"  hole PSNR {r['psnr_hole']:.2f} dB, SSIM {r['ssim_hole']:.3f}"
                     if r["psnr_hole"] is not None else "")
            print(f"  {name:<28} judge {100 * r['judge']:5.1f} %  ({100 * (r['judge'] - g['reader']):+5.1f}){holes}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
