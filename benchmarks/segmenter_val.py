"""A hole model's val scores under a segmenter config's val set: what `train.select` compares, for a model
that was not trained by that config (the shipped one, before a fine-tune replaces it).

    python benchmarks/segmenter_val.py --config configs/segmenter_posed.yaml --segmenter segmenter
    python benchmarks/segmenter_val.py --config configs/segmenter_posed.yaml --thresholds=-1,0,0.5,1,2

`--thresholds` also lists, per presence threshold (a logit; `find` uses 0), the share of real masked faces
found, of real bare faces and of the posed set's bare faces flagged, and of painted masks and occluders found.
"""

from __future__ import annotations

import argparse
import json

import torch

from unveil.io import write_json
from unveil.inpaint.segmenter import load_segmenter
from unveil.inpaint.segmenter_train import SegmenterTask, load_segmenter_config
from unveil.runtime import pick_device


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--segmenter", default="segmenter", help="a shipped name or a checkpoint path")
    p.add_argument("--thresholds", help="presence logits to sweep, e.g. -1,0,1")
    p.add_argument("--json")
    args = p.parse_args()
    cfg = load_segmenter_config(args.config)
    device = pick_device(cfg.device)
    task = SegmenterTask(cfg, cfg.data.load(), device)
    model = load_segmenter(args.segmenter, device)
    with torch.no_grad():
        scores = task.validate(model)
    print(json.dumps({"segmenter": args.segmenter, "config": args.config, "val": scores}, indent=1))
    if args.thresholds and task.val_photos is not None:
        sweep(model, task.val_photos, [float(t) for t in args.thresholds.split(",")])
    if args.json:
        write_json(args.json, {"segmenter": args.segmenter, "val": scores})
    return 0


def sweep(model, examples, thresholds: list[float]) -> None:
    with torch.no_grad():
        _, presence = model(examples.images.unsqueeze(1).float().div(255))
    kind = lambda *names: torch.tensor([k in names for k in examples.kinds])  # noqa: E731
    real, masked = kind("real"), examples.masked.cpu()
    print("presence logit | real masks found | real bare flagged | posed bare flagged | painted found")
    for t in thresholds:
        flag = presence.float().cpu() > t
        shares = [_share(flag, pick) for pick in (real & masked, real & ~masked, kind("posed-bare"),
                                                   kind("posed", "occluder", "painted"))]
        print(f"{t:>14g} | {shares[0]:15.1f} % | {shares[1]:16.1f} % | {shares[2]:17.1f} % | {shares[3]:12.1f} %")


def _share(flags: torch.Tensor, pick: torch.Tensor) -> float:
    return 100 * float(flags[pick].float().mean()) if pick.any() else float("nan")


if __name__ == "__main__":
    raise SystemExit(main())
