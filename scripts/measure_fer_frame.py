"""Measure the FER2013 frame: where its 48x48 Training faces have their eyes, nose and mouth corners.

    python scripts/measure_fer_frame.py --n 4000 --seed 0        # from /work/main, 1-3 minutes

A random sample of Training faces (never PublicTest or PrivateTest: they stay for selection and
the reported number) is upsampled to 160x160, padded with its replicated border so the detector sees
a whole face with some background, and run through our MTCNN. Faces with exactly one confident
detection keep their five landmarks, mapped back to 48x48 pixel coordinates (pixel centres at
integers). The means are `unveil.photo.align.FER_LANDMARKS`.

It also compares two ways of aligning a photo to the mean frame, fitting the eyes only or all five
points: for each measured face, the similarity that alignment would apply to FER2013's own crop
shows how far our framing would move from FER2013's (0 = identical).
"""

from __future__ import annotations

import argparse
import shlex
import sys

import cv2
import numpy as np
import torch

from unveil.classes import CLASSES
from unveil.data import load_faces
from unveil.photo import LANDMARK_NAMES, MTCNN
from unveil.photo.align import similarity_transform, transform_points

FER = 48


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/data/fer2013", help="FER2013 source (its Training split is used)")
    p.add_argument("--n", type=int, default=4000, help="faces sampled")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--upsample", type=int, default=160, help="side the 48x48 face is upsampled to")
    p.add_argument("--pad", type=int, default=48, help="replicated border added around the upsampled face")
    p.add_argument("--min-score", type=float, default=0.9, help="O-Net score of a confident detection")
    return p.parse_args()


def measure(images: np.ndarray, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks [M, 5, 2] in 48x48 coordinates and a mask [N] of the faces that gave them."""
    detector = MTCNN(min_face=args.upsample // 3, score=args.min_score)  # a FER face fills most of its frame
    k = args.upsample / FER
    found, ok = [], np.zeros(len(images), bool)
    for i, face in enumerate(images):
        big = cv2.resize(face, (args.upsample, args.upsample), interpolation=cv2.INTER_CUBIC)
        big = cv2.copyMakeBorder(big, *[args.pad] * 4, cv2.BORDER_REPLICATE)
        confident = detector.detect(big)
        if len(confident) == 1:
            # Padded, upsampled pixel centres -> 48x48 ones (resizing keeps pixel edges in place).
            found.append((confident[0].landmarks - args.pad + 0.5) / k - 0.5)
            ok[i] = True
        if (i + 1) % 500 == 0:
            print(f"  {i + 1}/{len(images)} faces, {ok.sum()} measured", file=sys.stderr)
    return np.stack(found), ok


def framing_shift(points: np.ndarray, mean: np.ndarray, pick: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per face: RMS displacement (48x48 px) of the frame's pixels and the scale, when the face's own
    FER2013 crop is aligned to ``mean`` by fitting the landmarks ``pick``."""
    grid = np.stack(np.meshgrid(np.arange(FER), np.arange(FER)), -1).reshape(-1, 2).astype(float)
    shift, scale = [], []
    for p in points:
        m = similarity_transform(p[pick], mean[pick])
        shift.append(np.sqrt(np.mean(np.sum((transform_points(m, grid) - grid) ** 2, 1))))
        scale.append(np.hypot(*m[:, 0]))
    return np.array(shift), np.array(scale)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(2)
    faces = load_faces(args.data, "train")
    rng = np.random.default_rng(args.seed)
    index = np.sort(rng.choice(len(faces), size=min(args.n, len(faces)), replace=False))
    images = faces.images[torch.from_numpy(index)].numpy()
    labels = faces.labels[torch.from_numpy(index)].numpy()
    points, ok = measure(images, args)
    mean, std, median = points.mean(0), points.std(0), np.median(points, 0)

    print(f"command: python scripts/measure_fer_frame.py {shlex.join(sys.argv[1:])}")
    print(f"FER2013 Training faces sampled: {len(index)} (seed {args.seed}); exactly one detection with score >= "
          f"{args.min_score}: {ok.sum()} ({100 * ok.mean():.1f} %)")
    print("landmark       mean x  (std)   mean y  (std)   median x, y   in 48x48 pixels, pixel centres at integers")
    for name, (mx, my), (sx, sy), (dx, dy) in zip(LANDMARK_NAMES, mean, std, median):
        print(f"{name:<12} {mx:8.2f} ({sx:4.2f}) {my:8.2f} ({sy:4.2f})   {dx:6.2f} {dy:6.2f}")
    eyes = points[:, :2].mean(1)
    iod = np.linalg.norm(points[:, 1] - points[:, 0], axis=1)
    print(f"eye centre   {eyes[:, 0].mean():8.2f} ({eyes[:, 0].std():4.2f}) {eyes[:, 1].mean():8.2f} "
          f"({eyes[:, 1].std():4.2f})")
    print(f"inter-ocular distance {iod.mean():.2f} ({iod.std():.2f})")
    print("FER_LANDMARKS = " + np.array2string(mean.round(2), separator=", "))

    print("\naligning FER2013's own crops to the mean frame (0 = FER2013's framing kept):")
    print("fit          RMS shift px (median, mean)   mean scale per class (" + ", ".join(CLASSES) + "), their std")
    kept = labels[ok]
    for name, pick in (("eyes", [0, 1]), ("five points", [0, 1, 2, 3, 4])):
        shift, scale = framing_shift(points, mean, pick)
        per_class = np.array([scale[kept == c].mean() for c in range(len(CLASSES)) if (kept == c).any()])
        listed = " ".join(f"{s:.3f}" for s in per_class)
        print(f"{name:<12} {np.median(shift):6.2f} {shift.mean():6.2f}{'':20}{listed}  {per_class.std():.3f}")


if __name__ == "__main__":
    main()
