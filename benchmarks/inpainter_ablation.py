"""Loss ablation on synthetic faces, judged by an independent classifier.

    python benchmarks/inpainter_ablation.py [--steps 300] [--seeds 0 1 2] [--only NAME ...]
                                            [--classifiers DIR] [--json OUT.json]

Trains four classifiers on the synthetic training faces: the JUDGE (a double-conv `vgg` at widths
8-16-32, seed 1, never in any loss), a plain GUIDE (tiny_cnn, seed 0), a ROBUST guide (tiny_cnn, seed 0,
FGSM adversarial training at eps 0.01) and an OCCLUDED-face classifier (tiny_cnn, seed 2, lower half
hidden) that conditions some generators. Then one small U-Net per loss setting and seed, everything
else equal (steps, data, schedule), and prints a table: hole PSNR/SSIM on the 700 val+test faces and
the judge's accuracy on the stitched reconstructions (mean and per seed), with the judge on full,
occluded (zero-filled) and mean-face-filled faces for reference. The guides' accuracies on the same
reconstructions are shown only to expose gaming (guide >> judge: the generator learned to please its
guide, not to draw the expression).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from unveil.classify import load_classifier, save_classifier
from unveil.classify.evaluate import predict_proba
from unveil.classify.train import train_quick
from unveil.inpaint import create_inpainter
from unveil.inpaint.evaluate import evaluate_inpainter
from unveil.inpaint.config import InpaintConfig
from unveil.inpaint.train import build_trainer
from unveil.config import apply_overrides, from_dict
from unveil.data import load_faces
from unveil.io import write_json
from unveil.occlusion import LowerHalf

# name -> (builder keyword arguments of train_quick, checkpoint sidecar extras)
CLASSIFIERS = {
    "judge": {"arch": "vgg", "epochs": 5, "seed": 1, "widths": (8, 16, 32), "hidden": (32,)},
    "guide": {"arch": "tiny_cnn", "epochs": 5, "seed": 0},
    "robust": {"arch": "tiny_cnn", "epochs": 10, "seed": 0, "adversarial_eps": 0.01},
    "occluded": {"arch": "tiny_cnn", "epochs": 6, "seed": 2, "occlusion": "lower-half"},
}
EXPR = "loss.expression=0.3,loss.expression_kind=ce,loss.expression_warmup=0.5"
SETTINGS = {
    "L1": "",
    "L1+adv": "loss.adversarial=0.05",
    "L1+perc": "loss.perceptual=0.5",
    "L1+perc+expr": f"loss.perceptual=0.5,{EXPR},loss.guide={{guide}}",
    "L1+perc+expr(robust)": f"loss.perceptual=0.5,{EXPR},loss.guide={{robust}}",
    "cond+L1+perc": "loss.perceptual=0.5,model.conditioning={occluded}",
    "cond+L1+perc+expr": f"loss.perceptual=0.5,{EXPR},loss.guide={{guide}},model.conditioning={{occluded}}",
    "cond+L1+perc+expr(no warm-up)": (f"loss.perceptual=0.5,{EXPR},loss.expression_warmup=0,loss.guide={{guide}},"
                                      "model.conditioning={occluded}"),
    "cond+L1+perc+expr(robust)": f"loss.perceptual=0.5,{EXPR},loss.guide={{robust}},model.conditioning={{occluded}}",
    "cond+L1+adv+perc+expr(robust)": (f"loss.adversarial=0.05,loss.perceptual=0.5,{EXPR},loss.guide={{robust}},"
                                      "model.conditioning={occluded}"),
}


def classifiers(faces, folder: Path) -> dict[str, torch.nn.Module]:
    """The four classifiers above, trained once and reused from `folder` (keyed by the data)."""
    models = {}
    for name, spec in CLASSIFIERS.items():
        path = folder / name
        if (folder / f"{name}.json").exists():
            model, meta = load_classifier(path)
            if meta.get("data_fingerprint") == faces.fingerprint:
                models[name] = model
                continue
        spec = dict(spec)
        arch_args = {k: list(spec.pop(k)) for k in ("widths", "hidden") if k in spec}
        model = train_quick(faces, **spec, **arch_args)
        save_classifier(path, model, {"arch": spec["arch"], "arch_args": arch_args, "seed": spec["seed"],
                                      "data_fingerprint": faces.fingerprint, "train_quick": spec})
        models[name] = model
    return models


def base_config(steps: int, seed: int) -> dict:
    return {"model": {"arch": "unet", "args": {"widths": [8, 16, 32]}},
            "loss": {"perceptual_kind": "gradient_ssim"},
            "train": {"epochs": 1, "steps_per_epoch": steps, "batch_size": 32, "ema": 0.99, "seed": seed,
                      "optim": {"lr": 2e-3, "warmup": 0.1}},
            "device": "cpu", "sample_every": 1000, "data": {"val_limit": 70}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--faces", type=int, default=3500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--only", nargs="*", help="subset of settings")
    parser.add_argument("--classifiers", help="folder to keep the four classifiers in, and reuse them from")
    parser.add_argument("--json", help="also write every row here")
    args = parser.parse_args()
    faces = load_faces(f"synthetic:n={args.faces},seed=0")
    held = faces.select(torch.cat([(faces.splits == 1).nonzero(), (faces.splits == 2).nonzero()]).squeeze(1))
    images, labels = held.float_images(), held.labels
    occlusion = LowerHalf()
    occluded_images, hole = occlusion(images)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        keep = Path(args.classifiers) if args.classifiers else tmp
        keep.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        models = classifiers(faces, keep)
        print(f"classifiers ready in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
        paths = {name: str(keep / name) for name in models}
        accuracy = {name: (lambda x, m=m: float((predict_proba(m, x).argmax(1) == labels).float().mean()))
                    for name, m in models.items()}
        guides = ("guide", "robust")

        rows = []
        mean = create_inpainter("mean_face").fit(faces.split("train").images)
        for name, shown, quality in (("full faces", images, None), ("occluded (zero fill)", occluded_images, None),
                                     ("mean_face", mean.reconstruct(occluded_images, hole),
                                      evaluate_inpainter(mean, images, labels, occlusion))):
            rows.append({"setting": name, "judge": [accuracy["judge"](shown)],
                         **{g: [accuracy[g](shown)] for g in guides},
                         "psnr_hole": [quality["psnr_hole"]] if quality else [],
                         "ssim_hole": [quality["ssim_hole"]] if quality else [],
                         "seconds": []})
        rows[1]["occluded classifier"] = accuracy["occluded"](occluded_images)
        for name, overrides in SETTINGS.items():
            if args.only and name not in args.only:
                continue
            row = {"setting": name, "judge": [], "guide": [], "robust": [], "psnr_hole": [], "ssim_hole": [],
                   "seconds": []}
            for seed in args.seeds:
                data = base_config(args.steps, seed)
                apply_overrides(data, [o for o in overrides.format(**paths).split(",") if o])
                start = time.perf_counter()
                trainer = build_trainer(from_dict(InpaintConfig, data), tmp / f"{len(rows)}_{seed}", faces=faces)
                trainer.fit()
                inpainter = trainer.task.inpainter(trainer.selected_model).eval()
                m = evaluate_inpainter(inpainter, images, labels, occlusion,
                                       judge=lambda x: predict_proba(models["judge"], x))
                recon = inpainter.reconstruct(occluded_images, hole)
                measured = (("judge", m["accuracy"]), ("psnr_hole", m["psnr_hole"]), ("ssim_hole", m["ssim_hole"]),
                            ("seconds", time.perf_counter() - start), *((g, accuracy[g](recon)) for g in guides))
                for key, value in measured:
                    row[key].append(value)
                print(f"{name} seed {seed}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in row.items() if k != "setting"),
                      file=sys.stderr, flush=True)
            rows.append(row)
    print(f"\nunet 8-16-32, {args.steps} steps x 32 faces, lower half, {len(labels)} val+test synthetic faces, "
          f"seeds {' '.join(map(str, args.seeds))}")
    print(f"{'setting':<32}{'PSNR hole':>10}{'SSIM hole':>10}{'judge acc':>10}  "
          f"{'per seed':<22}{'guide':>7}{'robust':>7}")
    avg = lambda v: f"{statistics.mean(v):.3f}" if v else "-"  # noqa: E731
    for r in rows:
        psnr = f"{statistics.mean(r['psnr_hole']):.2f}" if r["psnr_hole"] else "-"
        seeds = " ".join(f"{v:.3f}" for v in r["judge"]) if len(r["judge"]) > 1 else ""
        print(f"{r['setting']:<32}{psnr:>10}{avg(r['ssim_hole']):>10}{avg(r['judge']):>10}  {seeds:<22}"
              f"{avg(r['guide']):>7}{avg(r['robust']):>7}")
    print(f"(occluded-face classifier on occluded faces: {rows[1]['occluded classifier']:.3f})")
    if args.json:
        write_json(args.json, {"steps": args.steps, "seeds": args.seeds, "rows": rows})


if __name__ == "__main__":
    main()
