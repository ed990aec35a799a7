"""Ship a trained generator as checkpoints/NAME: its best weights and sidecar copied, the sidecar's `metrics.val`
set to FER2013 PublicTest under the generator's own occlusion (what tests/test_inpaint_train.py reproduces; a
data mix's pooled val kept as `metrics.val_pooled`), and its provenance recorded under `trained`.

    python scripts/ship_generator.py runs/inpaint-photos-unet inpainter_unet \
        --command "bash scripts/photo_generators.sh unet" --commit 1af8d20 --device "..." --selection "..."
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import yaml

from unveil.checkpoint import read_sidecar, update_sidecar
from unveil.data import load_faces
from unveil.inpaint import load_inpainter
from unveil.inpaint.evaluate import evaluate_inpainter
from unveil.occlusion import Occlusion

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="the training's run folder (its best.* is shipped)")
    p.add_argument("name", help="the shipped name, e.g. inpainter_unet")
    p.add_argument("--fer", default=str(ROOT.parent / "shared" / "data" / "fer2013"))
    for key in ("command", "commit", "device", "selection"):
        p.add_argument(f"--{key}", required=True)
    args = p.parse_args()
    staged = args.run / "ship" / args.name   # Unveil never writes inside its package: staged, then copied there
    staged.parent.mkdir(exist_ok=True)
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(args.run / f"best{suffix}", staged.with_suffix(suffix))
    meta = read_sidecar(staged, "inpainter")
    faces = load_faces(args.fer, "val")
    val = evaluate_inpainter(load_inpainter(staged), faces.float_images(), None, Occlusion.from_dict(meta["occlusion"]),
                             precision="fp32")
    metrics = {"val": {k: v for k, v in val.items() if isinstance(v, (int, float))},
               "val_pooled": meta["metrics"].get("val"), "selection": meta["metrics"].get("selection"),
               "precision": "fp32 inference on the saved weights; val: FER2013 PublicTest under the generator's "
                            "occlusion, val_pooled: the training's own val (every part of its data mix)"}
    trained = {"command": args.command, "commit": args.commit, "device": args.device, "selection": args.selection}
    data = yaml.safe_load((args.run / "config.yaml").read_text())["data"]   # what it trained on, mix or source
    source = "+".join(p["name"] for p in data["mix"]) if data.get("mix") else data["source"]
    update_sidecar(staged, {"metrics": metrics, "trained": trained, "data_source": source})
    target = ROOT / "checkpoints" / args.name
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(staged.with_suffix(suffix), target.with_suffix(suffix))
    print(f"shipped {args.run / 'best'} as {target}: FER2013 val hole PSNR {val['psnr_hole']:.2f} dB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
