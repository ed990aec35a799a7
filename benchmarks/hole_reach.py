"""Does the hole reach the mask's rim? Masks painted on photos (`wear_mask`, every style), whose pixels are
known, read through `predict`'s own path (detect on the painted photo, align, `--hole auto`): the share of
mask pixels left outside the hole (a rim the generators copy into the face), the hole's IoU with the
mask, and the share of bare faces given a hole, for each hole margin (pixels the hole is grown by).

    python benchmarks/hole_reach.py --data photos:../shared/data/kdef --split val --margins 0,1,2,3

Choose the margin on a val split; a pixel counts as mask where the mask covers a quarter of it or more.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from unveil.data import load_faces
from unveil.photo.framing import frame_face, warp_to_crop
from unveil.photo.masks import wear_mask
from unveil.photo.read import read_photo
from unveil.pipelines.predict import FaceFramer, grow_hole

COVERED = 0.25   # a crop pixel a quarter covered by the mask shows its rim


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a photos:DIR source")
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--margins", default="0,1,2,3")
    p.add_argument("--limit", type=int, default=0, help="the first N photos only (0: all)")
    p.add_argument("--json")
    args = p.parse_args()
    faces = load_faces(args.data, args.split)
    root = args.data.removeprefix("photos:")
    framer = FaceFramer("auto", device="cpu", margin=0)
    masked, truth, bare = [], [], []
    for k, face_id in enumerate(faces.ids[: args.limit or None]):
        rgb, _ = read_photo(f"{root}/{face_id}")
        found = framer.faces(rgb, face_id)[0]
        if not found:
            continue
        painted, cover = wear_mask(rgb, found[0], seed=k)
        again = framer.faces(painted, face_id)[0]
        if not again:
            continue
        framed = frame_face(painted, again[0])
        masked.append(framed.crop)
        truth.append(warp_to_crop(cover, framed.matrix) >= COVERED)
        bare.append(frame_face(rgb, found[0]).crop)
    crops = torch.from_numpy(np.stack(masked))[:, None].float().div(255)
    bare_crops = torch.from_numpy(np.stack(bare))[:, None].float().div(255)
    truth_t = torch.from_numpy(np.stack(truth))[:, None]
    holes, found = framer.segmenter.find(crops)
    bare_holes, bare_found = framer.segmenter.find(bare_crops)
    rows = {}
    for margin in map(int, args.margins.split(",")):
        hole = grow_hole(holes, margin) > 0.5
        left = (truth_t & ~hole).sum() / truth_t.sum().clamp_min(1)
        inter, union = (hole & truth_t).flatten(1).sum(1), (hole | truth_t).flatten(1).sum(1)
        rows[margin] = {"mask_left_outside": round(float(left), 4),
                        "iou_mean": round(float((inter / union.clamp_min(1)).float().mean()), 4),
                        "hole_area": round(float(hole.float().mean()), 4)}
    result = {"data": faces.source, "split": args.split, "faces": len(masked),
              "masked_found": round(float(found.float().mean()), 4),
              "bare_given_a_hole": round(float(bare_found.float().mean()), 4), "by_margin": rows}
    print(f"{faces.source} {args.split}: {len(masked)} faces with a painted mask; mask found on "
          f"{100 * result['masked_found']:.1f} %, bare twins given a hole {100 * result['bare_given_a_hole']:.1f} %")
    print("margin px | mask pixels left outside the hole | IoU | hole area")
    for margin, r in rows.items():
        print(f"{margin:>9} | {100 * r['mask_left_outside']:>6.2f} % | {r['iou_mean']:.3f} | "
              f"{100 * r['hole_area']:.1f} %")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
