"""The comparison report: metrics.json, report.md and its figures, written atomically."""

from __future__ import annotations

from pathlib import Path

from unveil.classes import CLASSES
from unveil.figures import accuracy_chart, confusion_image, save_png
from unveil.io import write_json, write_text



def write_comparison(report: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write metrics.json, the figures and report.md into `out_dir`; return their paths."""
    out = Path(out_dir)
    names = list(report["conditions"])
    paths = {"metrics": write_json(out / "metrics.json", report)}
    paths["accuracy"] = save_png(accuracy_chart(
        names, [report["conditions"][n]["accuracy"] for n in names],
        [report["conditions"][n]["ci95"]["accuracy"] for n in names] if _has_ci(report) else None,
        f"Accuracy of the judge ({report['judge']['arch']}), 95 % bootstrap intervals"),
        out / "accuracy.png")
    for name in names:
        paths[f"confusion_{name}"] = save_png(confusion_image(report["conditions"][name]["confusion"]),
                                              out / f"confusion_{name}.png")
    paths["report"] = write_text(out / "report.md", comparison_markdown(report))
    return paths


def _has_ci(report: dict) -> bool:
    return all("ci95" in c for c in report["conditions"].values())


def _fmt(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def summary_table(report: dict) -> str:
    """The headline table, one row per condition (also printed at the end of `compare`)."""
    lines = ["| condition | accuracy (95 % CI) | macro-F1 (95 % CI) | PSNR hole (dB) | SSIM hole | LPIPS |",
             "|---|---|---|---|---|---|"]
    for name, c in report["conditions"].items():
        ci = c.get("ci95", {})
        acc = _fmt(c["accuracy"]) + (f" ({_fmt(ci['accuracy'][0])}-{_fmt(ci['accuracy'][1])})" if ci else "")
        f1 = _fmt(c["macro_f1"]) + (f" ({_fmt(ci['macro_f1'][0])}-{_fmt(ci['macro_f1'][1])})" if ci else "")
        lines.append(f"| {name} | {acc} | {f1} | {_fmt(c.get('psnr_hole'), 2)} | {_fmt(c.get('ssim_hole'))} | "
                     f"{_fmt(c.get('lpips'))} |")
    return "\n".join(lines)


def comparison_markdown(report: dict) -> str:
    judge, data = report["judge"], report["data"]
    parts = [
        "# Unveil comparison",
        "",
        f"- data: `{data['source']}`, {data['n']} faces (split `{data.get('split', 'test')}`)",
        f"- occlusion: `{report['occlusion']}`; test-time augmentation: {'on' if report['tta'] else 'off'}",
        f"- judge: `{judge['path']}` ({judge['arch']}, trained on {judge.get('condition') or 'unknown'} faces, "
        f"sha256 {judge['weights_sha256'][:12]}) — the same weights score every condition",
    ]
    for name, inp in report.get("inpainters", {}).items():
        guide = (inp.get("guide") or {}).get("path")
        parts.append(f"- inpainter `{name}`: {inp.get('arch') or 'classical baseline'}"
                     + (f", guided by `{guide}`" if guide else ""))
    for warning in report.get("warnings", []):
        parts.append(f"\n> **Warning:** {warning}")
    parts += ["", "## Conditions", "", summary_table(report), "", "![accuracy](accuracy.png)", ""]
    missing = {c.get("lpips_missing") for c in report["conditions"].values() if c.get("lpips_missing")}
    if missing:
        parts += [f"LPIPS not computed: {missing.pop()}", ""]
    parts += ["## Per-class F1", "", "| condition | " + " | ".join(CLASSES) + " |",
              "|---|" + "---|" * len(CLASSES)]
    for name, c in report["conditions"].items():
        parts.append(f"| {name} | " + " | ".join(_fmt(c["per_class"][k]["f1"]) for k in CLASSES) + " |")
    parts += ["", "## Confusion matrices (rows: true class, columns: predicted)", ""]
    parts += [f"**{name}**\n\n![{name}](confusion_{name}.png)\n" for name in report["conditions"]]
    if "cross" in report:
        parts += ["## Cross-condition accuracy (rows: what the classifier was trained on)", "",
                  cross_table(report["cross"])]
    return "\n".join(parts) + "\n"


def cross_table(cross: dict) -> str:
    lines = ["| classifier (trained on) | " + " | ".join(cross["columns"]) + " |",
             "|---|" + "---|" * len(cross["columns"])]
    for row, accs in zip(cross["rows"], cross["accuracy"]):
        lines.append(f"| `{Path(row['classifier']).name}` ({row['trained_on']}) | "
                     + " | ".join(_fmt(a) for a in accs) + " |")
    return "\n".join(lines)
