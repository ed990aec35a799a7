"""Unveil's training loop side by side with the conventional recipe of typical FER2013 code, in one run:
the same network, faces, batch size and optimiser, trained (a) by `fit_classifier` (the data set resident
on the device, batched augmentation there) and (b) by a PyTorch DataLoader over PIL images with
torchvision transforms (flip, affine, ToTensor) per image. Prints seconds per epoch and the ratio.

    python benchmarks/peer_recipe.py --data ../shared/data/fer2013 --epochs 3      # GPU: the whole set
    python benchmarks/peer_recipe.py --n 3000 --epochs 2 --device cpu              # a slice on the CPU

The first epoch of each is left out (warm-up: kernel selection, worker start-up).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from unveil.classify import create_classifier
from unveil.classify.config import default_train
from unveil.classify.train import fit_classifier
from unveil.data import load_faces
from unveil.runtime import autocast, pick_device


class PILFaces(Dataset):
    """What typical FER2013 code does: one PIL image per face, transformed one at a time."""

    def __init__(self, faces):
        self.images = [Image.fromarray(face.numpy()) for face in faces.images]
        self.labels = faces.labels.tolist()
        self.transform = transforms.Compose([
            transforms.RandomHorizontalFlip(),
            transforms.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.85, 1.15)),
            transforms.ToTensor(),
        ])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def peer_epochs(faces, arch: str, args, device: torch.device) -> list[float]:
    model = create_classifier(arch, widths=(32, 64, 128, 256)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loader = DataLoader(PILFaces(faces), batch_size=args.batch, shuffle=True, num_workers=args.workers,
                        drop_last=True, pin_memory=device.type == "cuda", persistent_workers=args.workers > 0)
    times = []
    for _ in range(args.epochs):
        started = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast(device):
                loss = F.cross_entropy(model(x).float(), y, label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return times


def unveil_epochs(faces, arch: str, args, device: torch.device) -> list[float]:
    cfg = default_train()
    cfg.epochs, cfg.batch_size, cfg.ema = args.epochs, args.batch, 0.0
    _, history = fit_classifier(create_classifier(arch, widths=(32, 64, 128, 256)), faces, None, cfg,
                                device=device, progress=False)
    return [r["train_seconds"] for r in history["epochs"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="synthetic:n=36000,seed=0")
    parser.add_argument("--n", type=int, help="training faces (default: the whole train split)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers of the conventional recipe")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = pick_device(args.device)
    faces = load_faces(args.data, "train")
    if args.n:
        faces = faces.select(torch.arange(min(args.n, len(faces))))
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"vgg 32-256 on {len(faces):,} faces of {faces.source}, batch {args.batch}, {where}, "
          f"torch {torch.__version__}")
    rows = {"Unveil (resident data, batched augmentation)": unveil_epochs(faces, "vgg", args, device),
            f"DataLoader over PIL images, torchvision transforms, {args.workers} workers":
                peer_epochs(faces, "vgg", args, device)}
    medians = {name: statistics.median(t[1:] or t) for name, t in rows.items()}
    print("| loop | s/epoch (median after the first) | images/s |\n|---|---|---|")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds:.2f} | {len(faces) / seconds:,.0f} |")
    ours, theirs = medians.values()
    print(f"\nUnveil is {theirs / ours:.1f}x faster per epoch")


if __name__ == "__main__":
    main()
