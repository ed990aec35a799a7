"""Loss ablation on synthetic faces, judged by an independent classifier.

    python benchmarks/inpainter_ablation.py [--steps 300] [--faces 3500] [--arch unet]

Trains a GUIDE (tiny_cnn, seed 0, full faces) and a JUDGE (a double-conv `vgg` at widths 8-16-32,
seed 1: other seed, other architecture, never in any loss), then one small generator per loss
setting with everything else equal (seed, steps, data), and prints a table: hole PSNR/SSIM on the
val+test faces and the judge's accuracy on the stitched reconstructions, with the judge on full,
occluded (zero-filled) and mean-face-filled faces for reference. The guide's own accuracy is shown
too, only to expose gaming (guide >> judge means the generator learned to please its guide).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from classify import save_classifier  # noqa: E402
from classify.evaluate import predict_proba  # noqa: E402
from classify.train import train_quick  # noqa: E402
from inpaint import create_inpainter  # noqa: E402
from inpaint.evaluate import evaluate_inpainter  # noqa: E402
from inpaint.train import InpaintConfig, InpaintTrainer  # noqa: E402
from unveil.config import apply_overrides, from_dict  # noqa: E402
from unveil.data import load_faces  # noqa: E402
from unveil.occlusion import Occlusion  # noqa: E402

SETTINGS = {
    "L1": {},
    "L1+adv": {"loss.adversarial": 0.05},
    "L1+perc": {"loss.perceptual": 0.5},
    "L1+perc+expr(ce)": {"loss.perceptual": 0.5, "loss.expression": 0.3, "loss.expression_kind": "ce"},
    "L1+perc+expr(kl)": {"loss.perceptual": 0.5, "loss.expression": 0.3, "loss.expression_kind": "kl"},
    "L1+perc+expr(feature)": {"loss.perceptual": 0.5, "loss.expression": 0.3, "loss.expression_kind": "feature"},
    "L1+adv+perc+expr(ce)": {"loss.adversarial": 0.05, "loss.perceptual": 0.5, "loss.expression": 0.3},
}


def classifiers(faces, folder: Path):
    """The same guide and judge as tests/test_inpaint_guide.py; reused from `folder` when present."""
    from classify import load_classifier

    if (folder / "guide.json").exists() and (folder / "judge.json").exists():
        return load_classifier(folder / "guide")[0], load_classifier(folder / "judge")[0]
    guide = train_quick(faces, arch="tiny_cnn", epochs=5, seed=0)
    save_classifier(folder / "guide", guide, {"arch": "tiny_cnn", "arch_args": {}, "seed": 0,
                                              "data_fingerprint": faces.fingerprint})
    judge = train_quick(faces, arch="vgg", epochs=5, seed=1, widths=(8, 16, 32), hidden=(32,))
    save_classifier(folder / "judge", judge, {"arch": "vgg", "arch_args": {"widths": [8, 16, 32], "hidden": [32]},
                                              "seed": 1, "data_fingerprint": faces.fingerprint})
    return guide, judge


def base_config(arch: str, steps: int, guide: Path) -> dict:
    return {"model": {"arch": arch, "args": {"widths": [8, 16, 32]} if arch != "resnet_cgan" else {"ngf": 8, "n_blocks": 3}},
            "loss": {"guide": str(guide), "perceptual_kind": "gradient_ssim"},
            "train": {"epochs": 1, "steps_per_epoch": steps, "batch_size": 32, "lr": 2e-3, "warmup_epochs": 0.1,
                      "ema": 0.99, "device": "cpu", "sample_every": 1000, "seed": 0},
            "data": {"val_limit": 70}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=240)
    parser.add_argument("--faces", type=int, default=3500)
    parser.add_argument("--arch", default="unet")
    parser.add_argument("--only", nargs="*", help="subset of settings")
    parser.add_argument("--classifiers", help="folder to keep the trained guide and judge in, and reuse them from")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    faces = load_faces(f"synthetic:n={args.faces},seed=0")
    held = faces.select(torch.cat([(faces.splits == 1).nonzero(), (faces.splits == 2).nonzero()]).squeeze(1))
    images, labels = held.float_images(), held.labels
    occlusion = Occlusion()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        keep = Path(args.classifiers) if args.classifiers else tmp
        keep.mkdir(parents=True, exist_ok=True)
        guide, judge = classifiers(faces, keep)
        print(f"classifiers trained in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
        judge_p = lambda x: predict_proba(judge, x)  # noqa: E731
        guide_p = lambda x: predict_proba(guide, x)  # noqa: E731
        acc = lambda p: float((p.argmax(1) == labels).float().mean())  # noqa: E731
        occluded = occlusion(images)[0]
        mean = create_inpainter("mean_face").fit(faces.split("train").images)
        rows = [("full faces", None, acc(judge_p(images)), acc(guide_p(images)), 0.0),
                ("occluded (zero fill)", None, acc(judge_p(occluded)), acc(guide_p(occluded)), 0.0)]
        m = evaluate_inpainter(mean, images, labels, occlusion, judge=judge_p)
        rows.append(("mean_face", m, m["accuracy"], acc(guide_p(mean.reconstruct(occluded, occlusion(images)[1]))), 0.0))
        for name, m, j, g, _ in rows:
            print(f"{name}: judge {j:.3f}  guide {g:.3f}" + (f"  PSNR hole {m['psnr_hole']:.2f}" if m else ""),
                  file=sys.stderr, flush=True)
        for name, overrides in SETTINGS.items():
            if args.only and name not in args.only:
                continue
            data = base_config(args.arch, args.steps, keep / "guide")
            apply_overrides(data, [f"{k}={v}" for k, v in overrides.items()])
            cfg = from_dict(InpaintConfig, data)
            t = time.perf_counter()
            trainer = InpaintTrainer(cfg, tmp / name.replace("+", "_"), faces=faces, log=open("/dev/null", "w"))
            trainer.fit()
            inp = trainer.inpainter().eval()
            m = evaluate_inpainter(inp, images, labels, occlusion, judge=judge_p)
            recon = inp.reconstruct(*occlusion(images))
            rows.append((name, m, m["accuracy"], acc(guide_p(recon)), time.perf_counter() - t))
            print(f"{name}: PSNR hole {m['psnr_hole']:.2f}  SSIM hole {m['ssim_hole']:.3f}  judge {m['accuracy']:.3f}  "
                  f"guide {rows[-1][3]:.3f}  {rows[-1][4]:.0f}s", file=sys.stderr, flush=True)
    print(f"\n{args.arch}, {args.steps} steps x 32, lower-half, {len(labels)} val+test synthetic faces")
    print(f"{'setting':<24}{'PSNR hole':>10}{'SSIM hole':>10}{'judge acc':>10}{'guide acc':>10}{'train s':>9}")
    for name, m, j, g, s in rows:
        psnr = f"{m['psnr_hole']:.2f}" if m else "-"
        ssim = f"{m['ssim_hole']:.3f}" if m else "-"
        print(f"{name:<24}{psnr:>10}{ssim:>10}{j:>10.3f}{g:>10.3f}{s:>9.0f}")


if __name__ == "__main__":
    main()
