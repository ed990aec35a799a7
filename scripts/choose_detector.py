"""Choose the face detector's settings on data: the validation split of a masked / bare photo set.

    python scripts/choose_detector.py ../shared/data/masked-faces/real-crops --split val

RetinaFace runs once per framing (`side` x `pad`, see `unveil.photo.retinaface`) at a low score
cut-off, keeping every face's score and size. The script then prints, for single framings and for
two-pass schemes (the second framing only where the first found nothing), at several score cut-offs:
the share of masked and of bare photos with a face (of at least `--min-face` px), and the extra faces
per bare photo (faces beyond the first: on the single-face crops that make up most of such sets,
false faces). MTCNN at the settings Unveil used before, for comparison. Select on val only.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from unveil.photo import create_detector
from unveil.photo.hole_sets import masked_photos
from unveil.photo.read import read_photo

SCORES = (0.3, 0.5, 0.7, 0.9)


def detections(photos, detector) -> list[list[tuple[float, float]]]:
    out = []
    for photo in photos:
        rgb, _ = read_photo(photo.path)
        out.append([(f.score, f.size) for f in detector.detect(rgb)])
    return out


def kept(found, score: float, min_face: float) -> list[list[float]]:
    return [[s for s, size in faces if s >= score and size >= min_face] for faces in found]


def row(name: str, photos, faces: list[list[float]]) -> str:
    masked = 100 * np.mean([bool(k) for k, p in zip(faces, photos) if p.masked])
    bare = 100 * np.mean([bool(k) for k, p in zip(faces, photos) if not p.masked])
    extra = np.mean([max(len(k) - 1, 0) for k, p in zip(faces, photos) if not p.masked])
    return f"| {name} | {masked:.1f} | {bare:.1f} | {bare - masked:.1f} | {extra:.4f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="a masked / bare photo set (with_mask/, without_mask/)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--min-face", type=float, default=20)
    parser.add_argument("--framings", nargs="+", default=["480:0.2", "480:0.3", "640:0", "960:0", "960:0.3"],
                        help="SIDE:PAD framings to try")
    args = parser.parse_args()

    photos = masked_photos(args.root, args.split)
    print(f"{args.root} [{args.split}]: {sum(p.masked for p in photos)} masked, "
          f"{sum(not p.masked for p in photos)} bare photos; faces of {args.min_face:g} px and more\n")
    print("| detector | masked % | bare % | gap | extra faces per bare photo |\n|---|---|---|---|---|")
    before = detections(photos, create_detector("mtcnn", min_face=args.min_face, score=0.9))
    print(row("mtcnn, score 0.9 (before)", photos, kept(before, 0.9, args.min_face)), flush=True)
    found = {}
    for framing in args.framings:
        side, pad = framing.split(":")
        detector = create_detector("retinaface", min_face=args.min_face, score=min(SCORES),
                                   passes=((int(side), float(pad)),), max_side=max(1280, int(side)))
        found[framing] = detections(photos, detector)
        for score in SCORES:
            print(row(f"retinaface {framing}, score {score:g}", photos, kept(found[framing], score, args.min_face)),
                  flush=True)
    for first, second in itertools.permutations(found, 2):
        for score in SCORES[:2]:
            a, b = kept(found[first], score, args.min_face), kept(found[second], score, args.min_face)
            print(row(f"retinaface {first} then {second}, score {score:g}", photos, [x or y for x, y in zip(a, b)]))


if __name__ == "__main__":
    main()
