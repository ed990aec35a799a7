"""`unveil fit-fusion`: the one reading fitted on validation faces (`pipelines.fusion`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from unveil.errors import UnveilError
from unveil.shipped import PHOTO_JUDGE, PHOTO_READER

from .options import add_model_arguments, examples, occlusion_text, seed_value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit-fusion", help="fit the one reading (reader + judge on the reconstruction) on val faces",
                       description="Fit the calibrated fusion behind each face's one reading: the upper-half "
                                   "reader on the occluded face and the judge on the inpainter's reconstruction, "
                                   "pooled with weights and per-class offsets fitted on the val split of every "
                                   "--data source (never its test split), each occluded by its --occlusion. The "
                                   "checkpoint's sidecar names the three models by SHA-256; predict, serve, "
                                   "eval-photos and compare use it only with those models.",
                       epilog=examples(
                           "unveil fit-fusion --data ../shared/data/fer2013 --occlusion lower-half --data "
                           "photos:../shared/data/kdef --occlusion photo-mask --out runs/fusion/fusion"))
    p.add_argument("--data", action="append", required=True, help="a source whose val split is fitted on "
                                                                  "(repeatable)")
    p.add_argument("--occlusion", action="append", type=occlusion_text,
                   help="the hole of each --data, in order (one for all, or one per source; default lower-half)")
    p.add_argument("--reader", default=PHOTO_READER, help=f"the upper-half reader (default {PHOTO_READER})")
    p.add_argument("--judge", default=PHOTO_JUDGE, help=f"the judge (default {PHOTO_JUDGE})")
    p.add_argument("--inpainter", default="inpainter_unet", help="the inpainter whose reconstruction the judge "
                                                                 "reads (default inpainter_unet)")
    p.add_argument("--seed", type=seed_value, default=0, help="the occlusion draw")
    p.add_argument("--out", required=True, help="the checkpoint to write, e.g. runs/fusion/fusion")
    p.add_argument("--json", action="store_true", help="print the sidecar as one JSON object on stdout")
    add_model_arguments(p)
    p.set_defaults(run=run_fit_fusion)


def run_fit_fusion(args: argparse.Namespace) -> int:
    from .compare import Models
    from .fusion import FusionSpec, fit_one_reading

    occlusions = args.occlusion or ["lower-half"]
    if len(occlusions) not in (1, len(args.data)):
        raise UnveilError(f"give one --occlusion for all sources or one per --data ({len(args.data)}), "
                          f"not {len(occlusions)}")
    parts = tuple(zip(args.data, occlusions * len(args.data) if len(occlusions) == 1 else occlusions))
    out = Path(args.out)
    spec = FusionSpec(parts, args.reader, args.judge, args.inpainter, args.seed, out.name)
    meta = fit_one_reading(spec, Models.open(args.device, args.precision, args.checkpoints), out)
    if args.json:
        print(json.dumps(meta))
        return 0
    print(f"fusion weights: reader {meta['weights'][0]}, judge on the reconstruction {meta['weights'][1]}")
    for part in meta["fitted_on"]:
        acc = part["accuracy"]
        print(f"{part['data']} ({part['split']}, {part['occlusion']}, {part['n']} faces): reader "
              f"{100 * acc['reader']:.1f} %, judge on reconstruction {100 * acc['judge_reconstructed']:.1f} %, "
              f"one reading {100 * acc['one_reading']:.1f} % (on the faces it was fitted on)")
    print(f"wrote {out}.safetensors")
    return 0
