"""How well faces and their masks are found on real photos: `unveil eval-holes`.

    report = evaluate_holes(["real-crops", "synthetic-seg/testing"], FaceFramer("auto"), split="test")

Every photo is framed as `predict` frames it (the detector, the most confident face, `align_face`) and
the hole is found in one batch per set (`FaceFramer.holes`). Two kinds of set
(`unveil.photo.hole_sets`):

- **masked / bare folders**: per class, the share of photos with a face found (detection rate) and,
  of the faces found, the share given a mask hole (the mask-found rate on masked faces, the
  false-mask rate on bare ones); per origin where a manifest names them.
- **pixel-labelled photos**: the detection rate, the mask-found rate, the IoU of the hole model's mask with
  the label carried into the crop (a face where no mask was found has an empty hole: IoU 0) and the share
  of the label's pixels left outside the hole `predict` cuts (the mask widened to its rim), per group.
- **posed photos** (class folders of bare faces, e.g. KDEF, split folders honoured): each photo bare, with
  a mask painted on it and behind a painted occluder (a hand, a tissue, a scarf, a phone;
  `inpaint.segmenter_data.painted_photos`, detected and aligned again, cached): per head angle (`unveil.photo.pose`'s
  yaw of the bare face, in bands; and per KDEF view, S HL HR FL FR, where the file names carry it) the
  bare faces given a hole, the painted faces found again by the detector, the masks and the occluders
  found, their IoU and the share of their pixels left outside the hole cut. Faces turned beyond `max_yaw` are
  reported apart: `predict` marks their readings unreliable.

The misses are drawn (`misses.png`): masked faces without a mask hole, bare faces with one, the
lowest-IoU pixel-labelled faces, each crop with its hole tinted, and the photos with no face are listed.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from unveil.errors import DataError
from unveil.figures import Tile, save_png, tile_grid
from unveil.io import output_folder, write_json, write_text
from unveil.photo.framing import frame_photos, warp_to_crop
from unveil.photo.hole_sets import BARE_FOLDERS, MASKED_FOLDERS, masked_photos, pixel_labelled, read_hole_label

from .predict import MAX_YAW, SEARCH_FACE, FaceFramer

log = logging.getLogger(__name__)

MISSES_SHOWN = 24   # faces drawn per kind of miss


def is_pixel_set(root: Path) -> bool:
    return not any((root / name).is_dir() for name in (*MASKED_FOLDERS, *BARE_FOLDERS)) and any(
        p.is_dir() for p in root.rglob("images"))


def is_posed_set(root: Path) -> bool:
    """Class folders of bare photos (KDEF's layout), neither a masked / bare set nor a pixel-labelled one."""
    return (not is_pixel_set(root) and not any((root / name).is_dir() for name in (*MASKED_FOLDERS, *BARE_FOLDERS))
            and any(p.is_dir() for p in root.iterdir()))


def evaluate_holes(roots: list[str | Path], framer: FaceFramer, split: str | None = None,
                   max_yaw: float = MAX_YAW) -> tuple[dict, dict]:
    """(the report, the misses to draw) over every set in `roots`."""
    report, misses = {"detector": framer.detector.name, "hole": framer.hole_mode, "split": split, "sets": []}, {}
    for root in map(Path, roots):
        if is_pixel_set(root):
            record, missed = _pixel_set(root, framer)
        elif is_posed_set(root):
            record, missed = _posed_set(root, framer, split, max_yaw)
        else:
            record, missed = _masked_set(root, framer, split)
        report["sets"].append(record)
        misses.update({f"{root.name}: {k}": v for k, v in missed.items()})
    return report, misses


def _frame(paths: list[Path], framer: FaceFramer, what: str):
    """(framed photos, crops of the faces found [K, 1, 48, 48] on the device, the hole model's masks, the holes
    `predict` cuts (the masks widened to their rim), the hole modes used).
    A photo that cannot be read is named on stderr: it is left out of the rates, not counted as a miss."""
    framed = frame_photos(paths, framer.detector, min_size=SEARCH_FACE, what=what)
    for problem in _unreadable(framed):
        log.warning(f"{problem}; left out")
    found = framed.found
    crops = framed.crops[found].unsqueeze(1).float().div(255).to(framer.device)
    masks, used = framer.holes(crops, framed.points[found], grown=False)
    return framed, crops, masks, framer.holes(crops, framed.points[found])[0], used


def _rates(masked: np.ndarray, detected: np.ndarray, flagged: np.ndarray) -> dict:
    """Counts and rates of one class: photos, faces found, faces given a mask hole."""
    n, found, with_hole = int(masked.size), int(detected.sum()), int((flagged & detected).sum())
    out = {"photos": n, "faces_found": found, "detection_rate": _ratio(found, n), "mask_holes": with_hole,
           "mask_hole_rate": _ratio(with_hole, found)}
    return out


def _unreadable(framed) -> list[str]:
    return [framed.problems[i] for i in np.flatnonzero(~framed.readable.numpy())]


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def _masked_set(root: Path, framer: FaceFramer, split: str | None) -> tuple[dict, dict]:
    photos = masked_photos(root, split)
    framed, crops, holes, _, used = _frame([p.path for p in photos], framer, f"{root.name} {split or 'all'}")
    detected, readable = framed.found.numpy(), framed.readable.numpy()
    flagged = np.zeros(len(photos), bool)
    flagged[detected] = [not u.startswith("auto (no mask") for u in used]
    is_masked = np.array([p.masked for p in photos], bool)
    masked, bare = is_masked & readable, ~is_masked & readable
    record = {"root": str(root), "kind": "masked/bare", "split": split, "holes_used": dict(Counter(used)),
              "masked": _rates(is_masked[masked], detected[masked], flagged[masked]),
              "bare": _rates(is_masked[bare], detected[bare], flagged[bare]),
              "by_origin": {}, "unreadable": _unreadable(framed)}
    groups = defaultdict(list)
    for i in np.flatnonzero(readable):
        groups[(photos[i].group, photos[i].masked)].append(i)
    for (group, masked), idx in sorted(groups.items()):
        record["by_origin"][f"{'masked' if masked else 'bare'}/{group}"] = _rates(
            is_masked[idx], detected[idx], flagged[idx])
    index = np.flatnonzero(detected)
    rank = {int(i): k for k, i in enumerate(index)}
    misses = {"masked faces given no mask hole": [_tile(crops[rank[i]], holes[rank[i]], photos[i].group)
                                                 for i in index if is_masked[i] and not flagged[i]],
              "bare faces given a mask hole": [_tile(crops[rank[i]], holes[rank[i]], photos[i].group)
                                              for i in index if not is_masked[i] and flagged[i]]}
    record["no_face"] = [str(photos[i].path) for i in np.flatnonzero(~detected & readable)]
    return record, misses


def _pixel_set(root: Path, framer: FaceFramer) -> tuple[dict, dict]:
    pairs = pixel_labelled(root)
    framed, crops, holes, cuts, used = _frame([p.image for p in pairs], framer, root.name)
    detected, readable = framed.found.numpy(), framed.readable.numpy()
    truth = torch.stack([torch.from_numpy(_label_in_crop(pairs[i], framed.matrices[i].numpy()))
                         for i in np.flatnonzero(detected)]).unsqueeze(1).to(holes.device) if detected.any() else holes
    iou, outside = _iou(holes, truth), _outside(cuts, truth)
    flagged = np.array([not u.startswith("auto (no mask") for u in used], bool)
    record = {"root": str(root), "kind": "pixel labels", "photos": int(readable.sum()),
              "faces_found": int(detected.sum()), "detection_rate": _ratio(int(detected.sum()), int(readable.sum())),
              "holes_used": dict(Counter(used)), "mask_hole_rate": _ratio(int(flagged.sum()), int(detected.sum())),
              **_iou_summary(iou), **_outside_summary(outside), "by_group": {},
              "unreadable": _unreadable(framed)}
    groups = defaultdict(list)
    for k, i in enumerate(np.flatnonzero(detected)):
        groups[pairs[i].group].append(k)
    for group, idx in sorted(groups.items()):
        record["by_group"][group] = {"faces": len(idx), **_iou_summary(iou[idx]),
                                     **_outside_summary(outside[idx])}
    worst = np.argsort(iou.cpu().numpy(), kind="stable")[:MISSES_SHOWN]
    found_pairs = [pairs[i] for i in np.flatnonzero(detected)]
    misses = {"lowest IoU (tinted: the hole used; caption: IoU)": [
        _tile(crops[k], holes[k], f"{found_pairs[k].group} {float(iou[k]):.2f}") for k in worst]}
    record["no_face"] = [str(pairs[i].image) for i in np.flatnonzero(~detected & readable)]
    return record, misses


KDEF_VIEW = re.compile(r"(S|HL|HR|FL|FR)\.\w+$")   # KDEF names end in the view: straight, half / full left / right


def _yaw_bands(max_yaw: float) -> list[tuple[str, float, float]]:
    edges = sorted({0.0, 15.0, 35.0, float(max_yaw), 180.0})
    return [(f"yaw beyond {lo:g}° (turned away)" if lo >= max_yaw else f"yaw {lo:g}-{hi:g}°", lo, hi)
            for lo, hi in zip(edges, edges[1:])]


def _posed_set(root: Path, framer: FaceFramer, split: str | None, max_yaw: float) -> tuple[dict, dict]:
    from unveil.inpaint.segmenter_data import painted_photos

    photos = _posed_photos(root, split)
    framed, crops, holes, _, used = _frame(photos, framer, f"{root.name} {split or 'all'}")
    detected, readable = framed.found.numpy(), framed.readable.numpy()
    flagged = np.zeros(len(photos), bool)
    flagged[detected] = [not u.startswith("auto (no mask") for u in used]
    yaw = framed.poses[:, 0].abs().numpy()
    painted = {name: painted_photos(photos, name, f"{root.name} {split or 'all'}") for name in ("masks", "occluders")}
    scored = {name: _painted_scores(examples, framer) for name, examples in painted.items()}
    groups = {"all": np.flatnonzero(readable),
              f"kept (yaw within {max_yaw:g}°)": np.flatnonzero(readable & detected & (yaw <= max_yaw))}
    for name, lo, hi in _yaw_bands(max_yaw):
        groups[name] = np.flatnonzero(readable & detected & (yaw >= lo) & ((yaw < hi) | (hi >= 180)))
    views = [KDEF_VIEW.search(p.name) for p in photos]
    if all(views):
        for view in ("S", "HL", "HR", "FL", "FR"):
            groups[f"view {view}"] = np.flatnonzero(readable & np.array([v.group(1) == view for v in views]))
    record = {"root": str(root), "kind": "posed", "split": split, "max_yaw": max_yaw, "holes_used": dict(Counter(used)),
              "groups": {name: _posed_rates(idx, detected, flagged, scored) for name, idx in groups.items()},
              "unreadable": _unreadable(framed),
              "no_face": [str(photos[i]) for i in np.flatnonzero(~detected & readable)]}
    index = np.flatnonzero(detected)
    rank = {int(i): k for k, i in enumerate(index)}
    misses = {"bare faces given a hole (kept angles)": [
        _tile(crops[rank[i]], holes[rank[i]], f"yaw {yaw[i]:.0f}") for i in index if flagged[i] and yaw[i] <= max_yaw]}
    for name, (images, hole, found, _) in scored.items():
        misses[f"painted {name} not found"] = [_tile(images[k], hole[k], "") for k in np.flatnonzero(~found)]
    return record, misses


def _posed_photos(root: Path, split: str | None) -> list[Path]:
    from unveil.data.faces import SPLITS as FACE_SPLITS
    from unveil.data.sources import split_hint
    from unveil.photo.read import labelled_photos

    photos = [p for p, _ in labelled_photos(root)
              if split is None or split_hint(p.relative_to(root).parts) == FACE_SPLITS.index(split)]
    if not photos:
        raise DataError(f"{root}: no photos{f' in its {split}/ folder' if split else ''}")
    return photos


def _painted_scores(examples, framer: FaceFramer):
    """(crops, the hole model's mask, found or not, {photo index: (IoU of the mask, mask pixels outside the
    hole cut)}) of painted photos, found as `predict --hole auto` finds them."""
    images = examples.images.unsqueeze(1).float().div(255).to(framer.device)
    hole, cut, found = framer.auto_holes(images)
    truth = examples.target.unsqueeze(1).to(hole.device).float()
    iou, outside = _iou(hole, truth).cpu().numpy(), _outside(cut, truth).cpu().numpy()
    by_photo = {int(k): (float(i), float(o), bool(f)) for k, i, o, f in zip(examples.kinds, iou, outside, found.cpu())}
    return images, hole, found.cpu().numpy(), by_photo


def _posed_rates(index: np.ndarray, detected: np.ndarray, flagged: np.ndarray, scored: dict) -> dict:
    """One group of a posed set: its bare faces found and given a hole, and each painted kind's scores."""
    found = detected[index]
    out = {"photos": int(index.size), "bare_found": int(found.sum()), "bare_detection_rate": _ratio(int(found.sum()),
                                                                                                   int(index.size)),
           "bare_given_a_hole": _ratio(int(flagged[index].sum()), int(found.sum()))}
    for name, (_, _, _, by_photo) in scored.items():
        rows = [by_photo[int(i)] for i in index if int(i) in by_photo]
        out[name] = {"painted_found": len(rows), "detection_rate": _ratio(len(rows), int(index.size)),
                     "found_rate": _ratio(sum(r[2] for r in rows), len(rows)),
                     "iou_mean": round(float(np.mean([r[0] for r in rows])), 4) if rows else None,
                     "outside_hole": round(float(np.mean([r[1] for r in rows])), 4) if rows else None}
    return out


def _label_in_crop(pair, matrix: np.ndarray) -> np.ndarray:
    """The pixel label carried into the face's crop (resized to the photo first: labels may be stored smaller)."""
    label = read_hole_label(pair.label)
    with Image.open(pair.image) as img:
        size = img.size
    if label.shape[::-1] != size:
        label = np.array(Image.fromarray(label.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 0
    return (warp_to_crop(label, matrix) > 0.5).astype(np.float32)


def _iou(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    pred, truth = pred.flatten(1) > 0.5, truth.flatten(1) > 0.5
    inter, union = (pred & truth).sum(1).float(), (pred | truth).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def _outside(cut: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per face, the share of mask pixels (truth) left outside the hole `predict` cuts: a rim left visible is
    copied into the face by the generators."""
    cut, truth = cut.flatten(1) > 0.5, truth.flatten(1) > 0.5
    return (truth & ~cut).sum(1).float() / truth.sum(1).clamp_min(1).float()


def _outside_summary(outside: torch.Tensor) -> dict:
    return {"outside_hole": round(float(outside.mean()), 4) if len(outside) else None}


def _iou_summary(iou: torch.Tensor) -> dict:
    if len(iou) == 0:
        return {"iou_mean": None, "iou_median": None}
    return {"iou_mean": round(float(iou.mean()), 4), "iou_median": round(float(iou.median()), 4)}


def _tile(crop: torch.Tensor, hole: torch.Tensor, caption: str) -> Tile:
    """The crop in gray with its hole tinted red."""
    gray = (crop[0].float().cpu().numpy() * 255)[..., None].repeat(3, 2)
    tint = np.array([220.0, 40.0, 40.0])
    hidden = hole[0].cpu().numpy()[..., None] > 0.5
    return Tile(np.where(hidden, 0.55 * gray + 0.45 * tint, gray).round().astype(np.uint8), caption[:14])


OUTPUTS = {"holes.json", "holes.md", "misses.png", "misses.html"}


def write_outputs(report: dict, misses: dict, out: str | Path) -> dict[str, Path]:
    """holes.json, holes.md and misses.png (with misses.html listing the photos without a face), written
    as one set (`unveil.io.output_folder`): an earlier report is replaced whole, never mixed."""
    with output_folder(out, OUTPUTS, "eval-holes") as folder:
        written = _write(report, misses, folder)
    return {k: Path(out) / p.name for k, p in written.items()}


def _write(report: dict, misses: dict, out: Path) -> dict[str, Path]:
    paths = {"json": write_json(out / "holes.json", report), "markdown": write_text(out / "holes.md", markdown(report))}
    rows, labels = [], []
    for kind, tiles in misses.items():
        for start in range(0, min(len(tiles), MISSES_SHOWN), 12):
            rows.append(tiles[start:start + 12])
            labels.append(kind if start == 0 else "")
    if rows:
        paths["misses"] = save_png(tile_grid(rows, scale=2, gap=6), out / "misses.png")
        log.info("\n".join(f"misses.png row {k + 1}: {label}" for k, label in enumerate(labels) if label))
    listed = "".join(f"<li>{p}</li>" for s in report["sets"] for p in s["no_face"])
    paths["html"] = write_text(out / "misses.html",
                               "<!doctype html><meta charset='utf-8'><title>eval-holes misses</title>"
                               + ("<img src='misses.png'>" if rows else "")
                               + "".join(f"<p>row {k + 1}: {label}</p>" for k, label in enumerate(labels) if label)
                               + f"<h2>Photos with no face found</h2><ul>{listed}</ul>")
    return paths


def markdown(report: dict) -> str:
    """The report as tables: one per set."""
    lines = [f"detector {report['detector']}, hole {report['hole']}, split {report['split'] or 'all'}", ""]
    for s in report["sets"]:
        lines += [f"### {s['root']} ({s['kind']})", ""]
        if s["kind"] == "posed":
            lines += ["| faces | photos | bare: detection | bare: given a hole | masks: detection | masks: found | "
                      "masks: IoU | mask pixels outside the hole | occluders: detection | occluders: found | "
                      "occluders: IoU |", "|---|---|---|---|---|---|---|---|---|---|---|"]
            for name, r in s["groups"].items():
                m, o = r["masks"], r["occluders"]
                lines.append(f"| {name} | {r['photos']} | {_pct(r['bare_detection_rate'])} | "
                             f"{_pct(r['bare_given_a_hole'])} | {_pct(m['detection_rate'])} | "
                             f"{_pct(m['found_rate'])} | {m['iou_mean']} | {_pct(m['outside_hole'])} | "
                             f"{_pct(o['detection_rate'])} | "
                             f"{_pct(o['found_rate'])} | {o['iou_mean']} |")
        elif s["kind"] == "pixel labels":
            lines += ["| faces found | mask-hole rate | IoU mean | IoU median | mask pixels outside the hole |",
                      "|---|---|---|---|---|",
                      f"| {s['faces_found']}/{s['photos']} ({_pct(s['detection_rate'])}) | "
                      f"{_pct(s['mask_hole_rate'])} | "
                      f"{s['iou_mean']} | {s['iou_median']} | {_pct(s['outside_hole'])} |", ""]
            lines += ["| group | faces | IoU mean | IoU median | mask pixels outside the hole |",
                      "|---|---|---|---|---|"]
            lines += [f"| {g} | {r['faces']} | {r['iou_mean']} | {r['iou_median']} | {_pct(r['outside_hole'])} |"
                      for g, r in s["by_group"].items()]
        else:
            lines += ["| faces | photos | detection rate | faces given a mask hole |", "|---|---|---|---|"]
            for name in ("masked", "bare"):
                r = s[name]
                lines.append(f"| {name} | {r['photos']} | {_pct(r['detection_rate'])} | {_pct(r['mask_hole_rate'])} |")
            lines += ["", "| origin | photos | detection rate | faces given a mask hole |", "|---|---|---|---|"]
            lines += [f"| {g} | {r['photos']} | {_pct(r['detection_rate'])} | {_pct(r['mask_hole_rate'])} |"
                      for g, r in s["by_origin"].items()]
        if s["unreadable"]:
            lines += ["", f"{len(s['unreadable'])} photos could not be read and are left out (holes.json lists them)"]
        lines.append("")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def check_roots(roots: list[str]) -> None:
    for root in roots:
        if not Path(root).is_dir():
            raise DataError(f"{root}: not a folder (a with_mask/ + without_mask/ set, images/ + masks/, or class "
                            f"folders of photos)")
