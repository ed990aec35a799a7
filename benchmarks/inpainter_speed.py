"""Inpainter speed: training and inference throughput per generator, as a table.

    python benchmarks/inpainter_speed.py                    # auto device (CUDA if present)
    python benchmarks/inpainter_speed.py --device cpu --steps 5 --batch 64

Random faces (speed does not depend on content), lower-half occlusion. Training images/s is one full
generator step as `unveil train-inpainter` takes it (augment on the device, occlude, forward, the
losses of the FER configs, backward, optimiser step, EMA; plus the PatchGAN step for resnet_cgan),
through `Trainer.train_step`; s/epoch is for FER2013's 28,709 training faces. Inference is
`Inpainter.reconstruct` (bf16 where native). Classical baselines have no training column.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from unveil.inpaint import BASELINES, GENERATORS, create_inpainter
from unveil.inpaint.config import InpaintConfig
from unveil.inpaint.train import build_trainer
from unveil.config import from_dict
from unveil.data.faces import Faces
from unveil.occlusion import LowerHalf
from unveil.runtime import pick_device

FER_TRAIN = 28_709


def fake_faces(n: int) -> Faces:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 48, 48), generator=g, dtype=torch.uint8)
    splits = torch.zeros(n, dtype=torch.int8)
    splits[-max(n // 8, 16):] = 1
    return Faces(images, torch.arange(n) % 7, splits, [str(i) for i in range(n)], "random", "bench")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_speed(arch: str, device: torch.device, batch: int, steps: int, faces: Faces) -> float:
    cfg = {"model": {"arch": arch}, "loss": {"perceptual": 0.5, "perceptual_kind": "gradient_ssim",
                                           "adversarial": 0.05 if arch == "resnet_cgan" else 0.0},
           "train": {"batch_size": batch, "ema": 0.999, "epochs": 1, "steps_per_epoch": steps + 2},
           "device": str(device)}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(from_dict(InpaintConfig, cfg), tmp, faces=faces)
        batches = trainer.task.batches(0, 0)
        for _ in range(2):  # warm-up: kernel selection, allocator
            trainer.train_step(next(batches))
        sync(device)
        start = time.perf_counter()
        for step_batch in batches:
            trainer.train_step(step_batch)
        sync(device)
        return steps * batch / (time.perf_counter() - start)


@torch.no_grad()
def infer_speed(name: str, device: torch.device, batch: int, repeats: int, faces: Faces) -> float:
    inpainter = create_inpainter(name)
    if name == "mean_face":
        inpainter.fit(faces.images)
    inpainter = inpainter.to(device).eval()
    images = faces.images[:batch].unsqueeze(1).float().div(255).to(device)
    occluded, hole = LowerHalf()(images)
    for _ in range(2):
        inpainter.reconstruct(occluded, hole)
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        inpainter.reconstruct(occluded, hole)
    sync(device)
    return repeats * images.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description="Inpainter training and inference throughput.")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=None, help="training batch (default 256 on CUDA, 32 on CPU)")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps (default 50 CUDA, 3 CPU)")
    parser.add_argument("--infer-batch", type=int, default=None, help="default 4096 on CUDA, 256 on CPU")
    args = parser.parse_args()
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    batch = args.batch or (256 if cuda else 32)
    steps = args.steps or (50 if cuda else 3)
    infer_batch = args.infer_batch or (4096 if cuda else 256)
    faces = fake_faces(max(batch, infer_batch) + 64)
    where = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"inpainter speed on {where}; training batch {batch}, inference batch {infer_batch}")
    print(f"{'inpainter':<15}{'params':>9}{'train img/s':>13}{'s/epoch*':>10}{'infer img/s':>13}")
    for name in GENERATORS.names() + BASELINES.names():
        trainable = name in GENERATORS
        params = sum(p.numel() for p in create_inpainter(name).parameters()) if trainable else 0
        train = train_speed(name, device, batch, steps, faces) if trainable else None
        infer = infer_speed(name, device, infer_batch, 5 if cuda else 2, faces)
        t = f"{train:>13.1f}{FER_TRAIN / train:>10.1f}" if train else f"{'-':>13}{'-':>10}"
        print(f"{name:<15}{params / 1e6 if params else 0:>8.2f}M{t}{infer:>13.1f}", flush=True)
    print("* s/epoch for FER2013's 28,709 training faces at this batch size (validation not included)")


if __name__ == "__main__":
    main()
