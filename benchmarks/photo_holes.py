"""How well each hole finds a mask on a real photo: synthetic masks of every style, painted on the
sample photo with several seeds (`unveil.photo.masks.wear_mask`), framed as `predict` frames faces;
the painted pixels, carried into the 48x48 crop by the same alignment, are the truth.

    python benchmarks/photo_holes.py --seeds 10

Prints, per mask style and hole, the IoU with the painted mask (median, min) and how often the face
was not found at all (a mask can hide enough of the face for the detector to miss it).
"""

from __future__ import annotations

import argparse
import statistics

import cv2
import numpy as np

from unveil.photo import align_face
from unveil.photo.masks import wear_mask
from unveil.pipelines.predict import FaceFramer, sample_photo
from unveil.occlusion import MASK_STYLES


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def measure(style: str, seeds: int, framers: dict[str, FaceFramer]) -> dict:
    rgb = sample_photo()[0]
    face = framers["landmarks"].faces(rgb, "sample")[0][0]
    scores, missed = {name: [] for name in framers}, 0
    for seed in range(seeds):
        image, cover = wear_mask(rgb, face, (style,), seed=seed)
        found = framers["landmarks"].faces(image, style)[0]
        if not found:
            missed += 1
            continue
        truth = cv2.warpAffine(cover.astype(np.float32), align_face(image, found[0])[1], (48, 48)) > 0.5
        for name, framer in framers.items():
            scores[name].append(iou(framer.frame(image, found[0])[1][0, 0].cpu().numpy() > 0.5, truth))
    return {"missed": missed, **{name: (statistics.median(v), min(v)) if v else None for name, v in scores.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="masks per style (default 10)")
    args = parser.parse_args()
    framers = {name: FaceFramer(name, device="cpu") for name in ("auto", "landmarks", "lower-half")}
    print(f"| mask style | face not found | {' | '.join(f'{n}: IoU median (min)' for n in framers)} |")
    print("|---|---|" + "---|" * len(framers))
    for style in MASK_STYLES:
        row = measure(style, args.seeds, framers)
        cells = [f"{row[n][0]:.2f} ({row[n][1]:.2f})" if row[n] else "—" for n in framers]
        print(f"| {style} | {row['missed']} of {args.seeds} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
