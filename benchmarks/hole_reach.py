"""Does the hole reach the mask's rim? Masks painted on photos (`wear_mask`, every style), whose pixels are
known, read through `predict`'s own path (detect on the painted photo, align, `--hole auto`): the share of
mask pixels left outside the hole (a rim the generators copy into the face), the hole's IoU with the
mask, the share of bare faces given a hole, and what the photo reader reads through the hole (accuracy
on the crop with the hole at 0, as `predict` shows it), for each hole margin (pixels the hole is grown by)
and pixel threshold (the hole model's probability above which a pixel is hidden).

    python benchmarks/hole_reach.py --data photos:../shared/data/kdef --split val --margins 0,1,2,3 \
        --thresholds 0.5,0.3,0.2

Choose the margin on a val split. A crop pixel counts as mask where the mask covers more than half of it
(`eval-holes`' measure) or, stricter, a quarter of it: both are reported.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from unveil.classify import open_classifier, predict_proba
from unveil.data import load_faces
from unveil.photo.framing import frame_face, warp_to_crop
from unveil.photo.masks import wear_mask
from unveil.photo.read import read_photo
from unveil.pipelines.predict import FaceFramer, grow_hole
from unveil.shipped import PHOTO_READER

COVERS = (0.5, 0.25)   # the share of a crop pixel the mask must cover to count as mask


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a photos:DIR source")
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--margins", default="0,1,2,3")
    p.add_argument("--thresholds", default="0.5", help="pixel thresholds, comma-separated")
    p.add_argument("--limit", type=int, default=0, help="the first N photos only (0: all)")
    p.add_argument("--json")
    args = p.parse_args()
    faces = load_faces(args.data, args.split)
    root = args.data.removeprefix("photos:")
    framer = FaceFramer("auto", device="cpu", margin=0)
    masked, truth, bare, labels = [], [], [], []
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
        truth.append(warp_to_crop(cover, framed.matrix))
        bare.append(frame_face(rgb, found[0]).crop)
        labels.append(int(faces.labels[k]))
    crops = torch.from_numpy(np.stack(masked))[:, None].float().div(255)
    bare_crops = torch.from_numpy(np.stack(bare))[:, None].float().div(255)
    coverage = torch.from_numpy(np.stack(truth))[:, None]
    reader, labels = open_classifier(PHOTO_READER)[0], torch.tensor(labels)
    rows = {}
    for threshold in map(float, args.thresholds.split(",")):
        holes, found = framer.segmenter.find(crops, threshold)
        for margin in map(int, args.margins.split(",")):
            hole = grow_hole(holes, margin) > 0.5
            read = predict_proba(reader, crops * ~hole).argmax(1)
            row = {"threshold": threshold, "margin": margin, "hole_area": round(float(hole.float().mean()), 4),
                   "reader_accuracy": round(float((read == labels).float().mean()), 4)}
            for cover in COVERS:
                truth_t = coverage > cover if cover == 0.5 else coverage >= cover
                left = (truth_t & ~hole).sum() / truth_t.sum().clamp_min(1)
                inter, union = (hole & truth_t).flatten(1).sum(1), (hole | truth_t).flatten(1).sum(1)
                row[f"cover_{cover}"] = {"mask_left_outside": round(float(left), 4),
                                         "iou_mean": round(float((inter / union.clamp_min(1)).float().mean()), 4)}
            rows[f"{threshold}/{margin}"] = row
    bare_found = framer.segmenter.find(bare_crops)[1]
    result = {"data": faces.source, "split": args.split, "faces": len(masked),
              "masked_found": round(float(found.float().mean()), 4),
              "bare_given_a_hole": round(float(bare_found.float().mean()), 4), "by_setting": rows}
    print(f"{faces.source} {args.split}: {len(masked)} faces with a painted mask; mask found on "
          f"{100 * result['masked_found']:.1f} %, bare twins given a hole {100 * result['bare_given_a_hole']:.1f} %")
    print("threshold | margin px | hole area | reader | " + " | ".join(
        f"covered > {c}: mask pixels left outside the hole | IoU" for c in COVERS))
    for r in rows.values():
        print(f"{r['threshold']:>9} | {r['margin']:>9} | {100 * r['hole_area']:5.1f} % | "
              f"{100 * r['reader_accuracy']:5.1f} % | " + " | ".join(
            f"{100 * r[f'cover_{c}']['mask_left_outside']:6.2f} % | {r[f'cover_{c}']['iou_mean']:.3f}" for c in COVERS))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
