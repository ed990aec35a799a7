"""What Unveil reads on labelled photo sets: the judge on full faces, the upper-half reader on the occluded
face, the judge on a reconstruction, and the one reading, on the same faces with the same hole.

    python benchmarks/photo_readings.py --data photos:../shared/data/kdef --split val --angles S,HL,HR
    python benchmarks/photo_readings.py --data ../shared/data/fer2013 --split val --occlusion lower-half

`--angles` keeps KDEF photos by the angle code that ends their name (S straight, HL/HR half, FL/FR full
profile). Select on `--split val`; read the test split once, for the reported number.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

import torch

from unveil.data import load_faces
from unveil.occlusion import Occlusion
from unveil.pipelines.compare import Models, OneReadingInputs, condition_images
from unveil.shipped import FUSION, PHOTO_JUDGE, PHOTO_READER

KDEF_ANGLE = re.compile(r"(S|HL|HR|FL|FR)\.\w+$")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--angles", help="KDEF angle codes to keep, e.g. S,HL,HR (default: all)")
    p.add_argument("--occlusion", default="photo-mask", help="photo-mask (masks painted on the photos) or lower-half")
    p.add_argument("--judge", default=PHOTO_JUDGE)
    p.add_argument("--reader", default=PHOTO_READER)
    p.add_argument("--fusion", default=FUSION, help="the fusion checkpoint; '' for the equal-weight pool")
    p.add_argument("--inpainter", default="inpainter_unet")
    p.add_argument("--json", help="also write the numbers to this file")
    args = p.parse_args()
    started = time.perf_counter()
    faces = load_faces(args.data, args.split)
    if args.angles:
        keep = set(args.angles.split(","))
        index = [k for k, i in enumerate(faces.ids) if (m := KDEF_ANGLE.search(i)) and m.group(1) in keep]
        faces = faces.select(torch.tensor(index, dtype=torch.long))
    models = Models.open()
    judge = models.judge(args.judge)
    inpainters = models.inpainters([args.inpainter])
    one = OneReadingInputs.open(models, args.reader, args.fusion or None, judge, inpainters)
    _, shown = condition_images(faces, Occlusion.parse(args.occlusion), inpainters, models.device)
    labels = faces.labels.to(models.device)
    judged = judge.proba(shown[inpainters[0].name])
    rows = {"judge, full face": judge.proba(shown["full"]), "reader, occluded": one.reader.proba(shown["occluded"]),
            "judge, reconstruction": judged, "one reading": one.score(shown, judged, False)}
    result = {"data": faces.source, "split": args.split, "angles": args.angles, "occlusion": args.occlusion,
              "n": len(faces), "judge": judge.record["weights_sha256"][:12], "how": one.reading.how,
              "accuracy": {k: round(float((v.argmax(1) == labels).float().mean()), 4) for k, v in rows.items()},
              "seconds": round(time.perf_counter() - started, 1)}
    print(f"{faces.source} {args.split}{' angles ' + args.angles if args.angles else ''}, {args.occlusion}, "
          f"{len(faces)} faces ({result['how']})")
    for name, acc in result["accuracy"].items():
        print(f"  {name:<24} {100 * acc:5.1f} %")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    print(f"({result['seconds']} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
