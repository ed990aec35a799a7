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
        f"Accuracy of the judge ({report['judge']['arch']}"
        f"{', ' + view_label(report) + 'view' if view_label(report) else ''}), "
        f"95 % bootstrap intervals"),
        out / "accuracy.png")
    for name in names:
        condition = report["conditions"][name]
        paths[f"confusion_{name}"] = save_png(confusion_image(condition["confusion"], condition.get("classes")),
                                              out / f"confusion_{name}.png")
    paths["report"] = write_text(out / "report.md", comparison_markdown(report))
    return paths


def _has_ci(report: dict) -> bool:
    return all("ci95" in c for c in report["conditions"].values())


def _fmt(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def view_label(report: dict) -> str:
    """'' for the canonical classes; else what the numbers are, e.g. '3-class valence ' (in every header,
    so a 3-class number is never read as a 7-class one)."""
    view = report.get("class_view") or {}
    mapping = view.get("class_map")
    return f"{len(view['classes'])}-class {mapping['name']} " if mapping else ""


def summary_table(report: dict) -> str:
    """The headline table, one row per condition (also printed at the end of `compare`)."""
    kind = view_label(report)
    lines = [f"| condition | {kind}accuracy (95 % CI) | {kind}macro-F1 (95 % CI) | PSNR hole (dB) | SSIM hole "
             f"| LPIPS |",
             "|---|---|---|---|---|---|"]
    conditions = {"one reading": report["one_reading"], **report["conditions"]} if "one_reading" in report else \
        report["conditions"]
    for name, c in conditions.items():
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
        _data_line(data),
        f"- occlusion: `{report['occlusion']}`; test-time augmentation: {'on' if report['tta'] else 'off'}",
        f"- judge: `{judge['path']}` ({judge['arch']}, trained on {judge.get('condition') or 'unknown'} faces, "
        f"sha256 {judge['weights_sha256'][:12]}) — the same weights score every condition",
        f"- classes: {_view_line(report)}",
    ]
    if data.get("excluded_degenerate"):
        left = data["excluded_degenerate"]
        parts.append(f"- left out of the score: {left['excluded']} flagged faces ({left['criteria']}: "
                     f"{left['constant']} constant, {left['nearly_constant']} nearly constant, "
                     f"{left['copies']} copies)")
    for name, inp in report.get("inpainters", {}).items():
        guide = (inp.get("guide") or {}).get("path")
        parts.append(f"- inpainter `{name}`: {inp.get('arch') or 'classical baseline'}"
                     + (f", guided by `{guide}`" if guide else ""))
    for warning in report.get("warnings", []):
        parts.append(f"\n> **Warning:** {warning}")
    if "one_reading" in report:
        parts.append(f"- one reading (the report's first row): {report['one_reading']['how']}, over "
                     f"`{report['one_reading']['inpainter']}`")
    parts += ["", "## Conditions", "", summary_table(report), "", "![accuracy](accuracy.png)", ""]
    missing = {c.get("lpips_missing") for c in report["conditions"].values() if c.get("lpips_missing")}
    if missing:
        parts += [f"LPIPS not computed: {missing.pop()}", ""]
    classes = (report.get("class_view") or {}).get("classes") or list(CLASSES)
    parts += ["## Per-class F1", "", "| condition | " + " | ".join(classes) + " |",
              "|---|" + "---|" * len(classes)]
    for name, c in report["conditions"].items():
        parts.append(f"| {name} | " + " | ".join(_fmt(c["per_class"][k]["f1"]) for k in classes) + " |")
    parts += ["", "## Confusion matrices (rows: true class, columns: predicted)", ""]
    parts += [f"**{name}**\n\n![{name}](confusion_{name}.png)\n" for name in report["conditions"]]
    if "cross" in report:
        parts += ["## Cross-condition accuracy (rows: what the classifier was trained on)", "",
                  cross_table(report["cross"])]
    return "\n".join(parts) + "\n"


def _data_line(data: dict) -> str:
    if data.get("kind") != "photos":
        return f"- data: `{data['source']}`, {data['n']} faces (split `{data.get('split', 'test')}`)"
    holes = ", ".join(f"{mode} {count}" for mode, count in data["holes"].items())
    skipped = "".join(f"\n  - skipped: {line}" for line in data["skipped"])
    return (f"- data: real photos `{data['source']}`, {data['n']} faces from {data['photos']} photos (holes: {holes}; "
            f"{100 * data['mean_hole_fraction']:.0f} % of the crop hidden on average). No full condition and no "
            f"image quality: the truth is under the mask.{skipped}")


def _view_line(report: dict) -> str:
    view = report.get("class_view") or {}
    mapping = view.get("class_map")
    if not mapping:
        return f"the {len(CLASSES)} canonical classes"
    groups = "; ".join(f"{g} = {'+'.join(m)}" for g, m in mapping["groups"].items())
    how = "the judge's 7-class probabilities summed per group" if view.get("collapsed_from_canonical") else "as trained"
    return (f"**{len(view['classes'])}-class {mapping['name']} view** ({groups}; {how}) — not comparable with "
            f"7-class numbers")


def cross_table(cross: dict) -> str:
    lines = ["| classifier (trained on) | " + " | ".join(cross["columns"]) + " |",
             "|---|" + "---|" * len(cross["columns"])]
    intervals = cross.get("ci95") or [[None] * len(cross["columns"])] * len(cross["rows"])
    for row, accs, cis in zip(cross["rows"], cross["accuracy"], intervals):
        cells = [_fmt(a) + (f" ({_fmt(ci['accuracy'][0])}-{_fmt(ci['accuracy'][1])})" if ci else "")
                 for a, ci in zip(accs, cis)]
        lines.append(f"| `{Path(row['classifier']).name}` ({row['trained_on']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)
