"""`unveil data info` and `unveil data preview`."""

from __future__ import annotations

import argparse
import json

import torch

from unveil.classes import CLASSES
from unveil.data import SPLIT_CHOICES
from unveil.data.degenerate import LISTED, NEAR_CONSTANT_LEVELS, find_degenerate
from unveil.errors import UnveilError
from unveil.figures import Tile, save_png, tile_grid, to_uint8
from unveil.occlusion import Occlusion

from .options import add_source_arguments, count, examples, load_source, occlusion_text, seed_value


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="inspect a data source",
                          description="Inspect a data source: FER2013 CSV, image folders or archives, "
                                      "any class-folder set, or 'synthetic'.")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    info = data_sub.add_parser("info", help="count faces per split and class (--check: degenerate faces)",
                               epilog=examples(
                                   "unveil data info ../shared/data/fer2013",
                                   "unveil data info photos:../shared/data/kdef --check --json"))
    info.add_argument("source", help="a FER2013 CSV, a folder or archive of class folders, photos:DIR, or 'synthetic'")
    info.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    info.add_argument("--check", action="store_true",
                      help="also count and list degenerate faces: constant, nearly constant (the 5th-95th "
                           f"percentile of the pixels within {NEAR_CONSTANT_LEVELS} gray levels) and exact "
                           "duplicates within and across splits (a training face that is also a test face "
                           "inflates every test number); what data.drop_degenerate and --exclude-degenerate "
                           "leave out")
    add_source_arguments(info)
    info.set_defaults(run=run_info)

    preview = data_sub.add_parser("preview", help="write a PNG grid of faces with their occlusion",
                                  epilog=examples(
                                      "unveil data preview synthetic --occlusion mask:styles=surgical+n95 --out "
                                      "runs/preview.png",
                                      "unveil data preview ../shared/data/fer2013 --split val --per-class 4 --out "
                                      "runs/fer-val.png"))
    preview.add_argument("source")
    preview.add_argument("--occlusion", type=occlusion_text, default="lower-half",
                         help="none, lower-half[:start_row=24,fill=0] or mask[:styles=surgical+n95] (the masks drawn "
                              "from --seed)")
    preview.add_argument("--split", default="all", choices=SPLIT_CHOICES)
    preview.add_argument("--per-class", type=count(1), default=4, help="faces per class (default 4)")
    preview.add_argument("--seed", type=seed_value, default=0, help="which faces are drawn")
    preview.add_argument("--out", required=True, help="the PNG file to write")
    add_source_arguments(preview)
    preview.set_defaults(run=run_preview)

    store = data_sub.add_parser("store", help="decode a source once into a memory-mapped face store",
                                description="Write a source's decoded faces as a face store (uint8 shards read "
                                            "through memory maps): for sets too large to decode per run or to hold "
                                            "on one GPU. The store is then a source like any other.",
                                epilog=examples(
                                    "unveil data store ../shared/data/fer2013 runs/fer2013-store",
                                    "unveil train-classifier --config configs/classifier_fer_full.yaml --data "
                                    "runs/fer2013-store"))
    store.add_argument("source")
    store.add_argument("out", help="a new folder for the store")
    store.add_argument("--shard-faces", type=count(1), default=65_536, help="faces per shard file (65,536)")
    add_source_arguments(store)
    store.set_defaults(run=run_store)


def run_store(args: argparse.Namespace) -> int:
    from unveil.data.store import check_new_folder, write_store

    check_new_folder(args.out)  # before the decoding, not after it
    faces = load_source(args, args.source)
    folder = write_store(faces, args.out, shard_faces=args.shard_faces)
    per_split = ", ".join(f"{k} {sum(v.values())}" for k, v in faces.counts().items())
    print(f"wrote {folder}: {len(faces)} faces of {faces.source} ({per_split})")
    return 0


def run_info(args: argparse.Namespace) -> int:
    faces = load_source(args, args.source)
    counts = faces.counts()
    check = find_degenerate(faces).summary(faces, None if args.json else LISTED) if args.check else None
    detection = detection_rates(faces) if faces.skipped else None
    if args.json:
        totals = {split: sum(c.values()) for split, c in counts.items()}
        print(json.dumps({"source": faces.source, "total": len(faces), "splits": totals,
                          "counts": counts, "classes": list(CLASSES), **({"check": check} if check else {}),
                          **({"detection": detection, "skipped": faces.skipped} if detection else {})}))
        return 0
    header = f"{'split':<6}" + "".join(f"{c:>9}" for c in CLASSES) + f"{'total':>9}"
    print(f"{faces.source}: {len(faces)} faces\n{header}")
    for split, per_class in counts.items():
        print(f"{split:<6}" + "".join(f"{per_class[c]:>9}" for c in CLASSES) + f"{sum(per_class.values()):>9}")
    if detection:
        print(f"{'faces':<6}" + "".join(f"{_rate(detection[c]):>9}" for c in CLASSES) + f"{_rate(detection['all']):>9}"
              + "  (photos with a usable face)")
        print("\n".join(f"skipped {s['id']}: {s['reason']}" for s in faces.skipped[:LISTED])
              + (f"\n... {len(faces.skipped) - LISTED} more (--json lists them all)"
                 if len(faces.skipped) > LISTED else ""))
    if check:
        print("\n".join(check_lines(check)))
    return 0


def detection_rates(faces) -> dict[str, dict[str, int]]:
    """Per class (and in all): photos, and photos with a usable face, for a source that skips some
    (photos:DIR)."""
    found = {c: int((faces.labels == k).sum()) for k, c in enumerate(CLASSES)}
    missed = dict.fromkeys(CLASSES, 0)
    for skipped in faces.skipped:
        missed[skipped["label"]] += 1
    out = {c: {"photos": found[c] + missed[c], "faces": found[c]} for c in CLASSES}
    out["all"] = {"photos": len(faces) + len(faces.skipped), "faces": len(faces)}
    return out


def _rate(counts: dict[str, int]) -> str:
    return f"{100 * counts['faces'] / counts['photos']:.1f}%" if counts["photos"] else "-"


def check_lines(check: dict) -> list[str]:
    """`data info --check` as text: counts, then the ids (the first few of each kind)."""
    per_split = lambda counts: ", ".join(f"{k} {v}" for k, v in counts.items())  # noqa: E731
    dup = check["duplicates"]
    lines = ["", "degenerate faces:",
             f"  constant          {check['constant']['count']:>6}  ({per_split(check['constant']['by_split'])})",
             f"  nearly constant   {check['nearly_constant']['count']:>6}  "
             f"({per_split(check['nearly_constant']['by_split'])}; {check['criteria']['nearly_constant']})",
             f"  duplicate groups  {dup['groups']:>6}  ({dup['faces']} faces, {dup['label_conflicts']} groups with "
             f"conflicting labels; constant faces not counted again)"]
    lines += [f"    within {k:<14}{v['groups']:>6} groups ({v['faces']} faces)" for k, v in dup["within_split"].items()]
    lines += [f"    across {k:<14}{v['groups']:>6} groups ({v['faces']} faces)"
              for k, v in dup["across_splits"].items()]
    lines += [f"  {split} faces with a copy in {per_split(others)}"
              for split, others in dup["copied_in_another_split"].items()]
    lines.append(f"  flagged: {per_split(check['flagged'])} ({check['criteria']['flagged']}; what "
                 f"data.drop_degenerate drops from training and --exclude-degenerate leaves out of a score)")
    for kind in ("constant", "nearly_constant"):
        if check[kind]["faces"]:
            lines.append(f"{kind.replace('_', ' ')}: {', '.join(check[kind]['faces'])}"
                         + (" ..." if check[kind]["count"] > len(check[kind]["faces"]) else ""))
    for group in dup["list"]:
        lines.append(f"copies: {' = '.join(group)}")
    if dup["groups"] > len(dup["list"]):
        lines.append(f"... {dup['groups'] - len(dup['list'])} more groups (--json lists every face)")
    return lines


def run_preview(args: argparse.Namespace) -> int:
    occlusion = Occlusion.parse(args.occlusion)
    faces = load_source(args, args.source, args.split)
    if len(faces) == 0:
        raise UnveilError(f"{args.source}: no faces in split {args.split!r} (see unveil data info {args.source})")
    gen = torch.Generator().manual_seed(args.seed)
    rows, labels = [], []
    for k, name in enumerate(CLASSES):
        members = (faces.labels == k).nonzero().squeeze(1)
        if len(members) == 0:
            continue
        pick = members[torch.randperm(len(members), generator=gen)[: args.per_class]]
        images = faces.select(pick).float_images()
        occluded, _ = occlusion(images, seed=args.seed)
        # Each face as a pair: original, then occluded.
        pairs = torch.stack([images, occluded], 1).flatten(0, 1)
        rows.append([Tile(face) for face in to_uint8(pairs)])
        labels.append(name)
    path = save_png(tile_grid(rows, labels), args.out)
    print(f"wrote {path} ({sum(len(r) // 2 for r in rows)} faces, occlusion {occlusion})")
    return 0
