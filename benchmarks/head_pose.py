"""Head pose on KDEF's five views, and the yaw limit beyond which `predict` calls a face turned away.

    python benchmarks/head_pose.py --data ../shared/data/kdef --split val

Every photo of the split is detected as `predict` detects it (its most confident face) and its pose
estimated from the five landmarks (`unveil.photo.pose`). Per view (S straight, HL/HR half profiles,
FL/FR full profiles): the photos, the faces found and the median and 10th/90th percentiles of the yaw.
The limit is the midpoint between the half and the full profiles' median |yaw|. Choose it on val.
"""

from __future__ import annotations

import argparse
import re

import numpy as np

from unveil.data.faces import SPLITS
from unveil.io import write_json
from unveil.data.sources import split_hint
from unveil.photo import create_detector
from unveil.photo.framing import frame_photos
from unveil.photo.read import labelled_photos

VIEW = re.compile(r"(S|HL|HR|FL|FR)\.\w+$")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="KDEF's folder (class folders in train/ val/ test/)")
    p.add_argument("--split", default="val", choices=("train", "val", "test"))
    p.add_argument("--json")
    args = p.parse_args()
    photos = [path for path, _ in labelled_photos(args.data)
              if split_hint(path.relative_to(args.data).parts) == SPLITS.index(args.split)]
    framed = frame_photos(photos, create_detector(), what=f"kdef {args.split}")
    views = np.array([VIEW.search(path.name).group(1) for path in photos])
    yaw = framed.poses[:, 0].numpy()
    rows = {}
    for view in ("FL", "HL", "S", "HR", "FR"):
        pick, found = views == view, (views == view) & framed.found.numpy()
        y = yaw[found]
        rows[view] = {"photos": int(pick.sum()), "found": int(found.sum()),
                      "yaw_median": round(float(np.median(y)), 1), "yaw_p10": round(float(np.percentile(y, 10)), 1),
                      "yaw_p90": round(float(np.percentile(y, 90)), 1),
                      "abs_yaw_median": round(float(np.median(np.abs(y))), 1)}
    half = np.median(np.abs(yaw[np.isin(views, ("HL", "HR")) & framed.found.numpy()]))
    full = np.median(np.abs(yaw[np.isin(views, ("FL", "FR")) & framed.found.numpy()]))
    result = {"data": args.data, "split": args.split, "views": rows, "half_abs_median": round(float(half), 1),
              "full_abs_median": round(float(full), 1), "limit": round(float(half + full) / 2, 1)}
    print(f"{args.data} {args.split}: yaw per view (degrees; > 0 the nose towards the photo's right)")
    for view, r in rows.items():
        print(f"  {view:<3} {r['found']:>4}/{r['photos']:<4} median {r['yaw_median']:6.1f}  "
              f"p10 {r['yaw_p10']:6.1f}  p90 {r['yaw_p90']:6.1f}")
    print(f"median |yaw|: half profiles {half:.1f}, full profiles {full:.1f} -> limit {result['limit']}")
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
