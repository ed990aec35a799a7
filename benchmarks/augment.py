"""Unveil's batched augmentation against kornia's, on what training does to every batch: the geometry
(`unveil.augment.Augment`: flip, rotation/scale/shift, random erasing), the photo look (`PhotoLike`: blur,
motion blur, gamma, contrast, noise) and CutMix (`classify.losses.mix_batch`). Both sides batched, on the
same faces, same settings where kornia has them; medians of several runs, one table (ms per batch).

    pip install -e ".[bench]"                  # kornia: only this benchmark needs it
    python benchmarks/augment.py               # 128 and 512 faces per batch, on the CPU
    python benchmarks/augment.py --device cuda

The faster side is what training runs (docs/speed.md says which, with this table).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from unveil.augment import Augment, PhotoLike
from unveil.classify.losses import LossConfig, mix_batch
from unveil.data import load_faces


def ours(device: str) -> dict:
    geometry = Augment(flip=True, degrees=10, scale=(0.85, 1.15), shift=0.1, erase=0.5)
    photo = PhotoLike(resample=1.0, blur=1.0, gamma=0.5, contrast=0.3, noise=0.03, motion=0.3)
    cutmix = LossConfig(cutmix=1.0, mix_prob=1.0)
    generator = torch.Generator(device).manual_seed(0)
    return {"geometry (flip, affine, erase)": lambda x: geometry(x, generator),
            "photo look (blur, motion, gamma, contrast, noise)": lambda x: photo(x, generator),
            "CutMix": lambda x: mix_batch(x, torch.zeros(len(x), dtype=torch.long, device=x.device), cutmix)[0]}


def kornia_side() -> dict:
    import kornia.augmentation as K

    geometry = K.AugmentationSequential(
        K.RandomHorizontalFlip(p=0.5),
        K.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.85, 1.15), padding_mode="border", p=1.0),
        K.RandomErasing(scale=(0.02, 0.2), ratio=(1 / 3, 3), p=0.5))
    photo = K.AugmentationSequential(
        K.RandomGaussianBlur(kernel_size=(7, 7), sigma=(1e-3, 1.0), p=1.0),
        K.RandomMotionBlur(kernel_size=7, angle=180.0, direction=0.0, p=0.3),
        K.RandomGamma(gamma=(1 / 1.5, 1.5), p=1.0),
        K.RandomContrast(contrast=(0.7, 1.0), p=1.0),
        K.RandomGaussianNoise(std=0.03, p=1.0))
    cutmix = K.RandomCutMixV2(p=1.0, use_correct_lambda=True)
    labels = {}
    return {"geometry (flip, affine, erase)": geometry,
            "photo look (blur, motion, gamma, contrast, noise)": photo,
            "CutMix": lambda x: cutmix(x, labels.setdefault(len(x), torch.zeros(len(x), device=x.device)))[0]}


def median_ms(work, x: torch.Tensor, repeats: int) -> float:
    for _ in range(3):
        work(x)   # warm-up: kernels chosen, buffers allocated
    times = []
    for _ in range(repeats):
        if x.is_cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        work(x)
        if x.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 512], help="faces per batch")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    faces = load_faces("synthetic:n=2000,seed=0").float_images().to(args.device)
    sides = {"unveil": ours(args.device), "kornia": kornia_side()}
    print(f"{'ms per batch (median of ' + str(args.repeats) + ')':<52}" + "".join(
        f"{f'{side} {n}':>14}" for n in args.batches for side in sides))
    for what in sides["unveil"]:
        cells = [median_ms(sides[side][what], faces[:n], args.repeats) for n in args.batches for side in sides]
        print(f"{what:<52}" + "".join(f"{ms:>14.2f}" for ms in cells))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")


if __name__ == "__main__":
    main()
