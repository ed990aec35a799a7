"""A hole model's val scores under a segmenter config's val set: what `train.select` compares, for a model
that was not trained by that config (the shipped one, before a fine-tune replaces it).

    python benchmarks/segmenter_val.py --config configs/segmenter_posed.yaml --segmenter segmenter
"""

from __future__ import annotations

import argparse
import json

import torch

from unveil.inpaint.segmenter import load_segmenter
from unveil.inpaint.segmenter_train import SegmenterTask, load_segmenter_config
from unveil.runtime import pick_device


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--segmenter", default="segmenter", help="a shipped name or a checkpoint path")
    p.add_argument("--json")
    args = p.parse_args()
    cfg = load_segmenter_config(args.config)
    device = pick_device(cfg.device)
    task = SegmenterTask(cfg, cfg.data.load(), device)
    with torch.no_grad():
        scores = task.validate(load_segmenter(args.segmenter, device))
    print(json.dumps({"segmenter": args.segmenter, "config": args.config, "val": scores}, indent=1))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"segmenter": args.segmenter, "val": scores}, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
