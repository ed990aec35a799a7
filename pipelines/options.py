"""Command-line options that several commands share, and the one way each of them is read."""

from __future__ import annotations

import argparse

from unveil.classes import ClassMap, parse_aliases
from unveil.config import SEED_LIMIT, check_seed
from unveil.data import SPLIT_CHOICES, Faces, load_faces
from unveil.errors import UnveilError
from unveil.occlusion import Occlusion
from unveil.runtime import PRECISIONS


def examples(*commands: str) -> str:
    """A command's --help epilog: the commands given, one per line, as a user would type them."""
    return "examples:\n" + "\n".join(f"  {command}" for command in commands)


def count(minimum: int = 0):
    """An argparse type for a number of things (faces, resamples, folds): a whole number >= `minimum`,
    so `--per-class -3` is an error instead of a slice that drops three faces."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "count"
    return parse


def seed_value(text: str) -> int:
    """An argparse type for --seed: a whole number every library Unveil seeds takes (0 .. 2**32 - 1)."""
    try:
        return check_seed(int(text), "--seed")
    except ValueError:  # not a number, or out of range (an UnveilError is a ValueError)
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to {SEED_LIMIT - 1}, "
                                         f"got {text!r}") from None


def occlusion_text(text: str) -> str:
    """An argparse type for --occlusion: `none` or an occlusion's text form, checked now. It carries no
    `seed=`: a command draws its masks from its own --seed, which would silently win."""
    if text != "none":
        try:
            Occlusion.parse(text, seeded=False)
        except UnveilError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def split_list(text: str | None, empty: tuple | None = ()) -> tuple[str, ...] | None:
    """A comma-separated option (--inpainters, --cross) as a tuple; `empty` when it names nothing."""
    items = tuple(item.strip() for item in (text or "").split(",") if item.strip())
    return items or empty


def add_bootstrap_argument(parser: argparse.ArgumentParser) -> None:
    """--bootstrap N, the resamples behind every 95 % interval (--n-boot, its older name, still read)."""
    parser.add_argument("--bootstrap", type=count(0), default=1000,
                        help="bootstrap resamples for the 95 %% intervals (default 1000; 0: none)")
    parser.add_argument("--n-boot", dest="bootstrap", type=count(0), help=argparse.SUPPRESS)


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every command that reads a data source shares."""
    parser.add_argument("--alias", action="append", metavar="NAME=CLASS",
                        help="map a folder name to a canonical class (repeatable), e.g. joy=happy")
    parser.add_argument("--no-normalize", action="store_true",
                        help="skip the per-image min-max stretch (on by default, as for training)")
    parser.add_argument("--no-cache", action="store_true", help="decode again instead of using the cache")


def load_source(args: argparse.Namespace, source: str, split: str = "all") -> Faces:
    return load_faces(source, split, normalize=not args.no_normalize,
                      aliases=parse_aliases(args.alias), use_cache=not args.no_cache)


def add_exclude_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--exclude-degenerate", action="store_true",
                        help="leave out of the score the faces `unveil data info --check` flags: constant, nearly "
                             "constant, copied in another split (e.g. a test face that is also a training face), "
                             "and later copies within the split; recorded in the report")


def load_scored(load, source: str, split: str, exclude_degenerate: bool) -> tuple[Faces, dict | None]:
    """The faces of `split` a command scores (`load(source, split)` reads them) and, when
    `exclude_degenerate`, less the flagged ones (found over every split) with the record of those left out."""
    if not exclude_degenerate:
        return load(source, split), None
    from unveil.data.degenerate import without_degenerate

    return without_degenerate(load(source, "all"), split)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Where models run and come from: every command that loads a checkpoint has these."""
    parser.add_argument("--device", default="auto", help="auto (default: CUDA if present), cpu, cuda, cuda:1 ...")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="inference precision: auto (bf16 where the hardware runs it natively, as CUDA "
                             "and CPUs with AVX512-BF16 do), bf16, or fp32 (exact on any machine)")
    parser.add_argument("--checkpoints", metavar="DIR",
                        help="where shipped checkpoint names (classifier_full, inpainter_unet, ...) are "
                             "looked up (default: the models installed with Unveil)")


def add_train_arguments(parser: argparse.ArgumentParser, example: str) -> None:
    """The options of every train-* command: one config, overrides, the run folder and resume."""
    parser.add_argument("--config", required=True, help=f"a YAML config, e.g. {example}")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value (repeatable), e.g. --set train.epochs=3")
    parser.add_argument("--data", help="the data source (shortcut for --set data.source=SOURCE)")
    parser.add_argument("--out", help="run folder (default: the config's out, else runs/<name>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in the run folder from last.* (under the same config)")
    parser.add_argument("--half", action="store_true", help="store best.* in fp16, for shipping")
    parser.add_argument("--init", metavar="CHECKPOINT",
                        help="start from this model's weights (a path or a shipped name, e.g. classifier_occluded) "
                             "instead of random ones: fine-tuning (shortcut for --set init=CHECKPOINT)")
    parser.add_argument("--device", help="override the config's device: auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("--json", action="store_true", help="print the final metrics as one JSON object on stdout")
    parser.add_argument("--no-wandb", action="store_true",
                        help="do not log the training to W&B (offline by default: RUN/wandb, no login needed)")


def train_overrides(args: argparse.Namespace) -> list[str]:
    """--set, plus the shortcuts, as `key=value` overrides for the config loader."""
    import json

    overrides = list(args.set)
    if args.data:
        overrides.append(f"data.source={json.dumps(args.data)}")
    if args.half:
        overrides.append("train.half=true")
    if args.device:
        overrides.append(f"device={args.device}")
    if args.init:
        overrides.append(f"init={json.dumps(args.init)}")
    if args.out:
        overrides.append(f"out={json.dumps(args.out)}")
    return overrides


def add_evaluation_arguments(parser: argparse.ArgumentParser, out_help: str) -> None:
    """What every command that scores models on a split takes, besides its models."""
    parser.add_argument("--data", required=True, help="a data source: FER2013 folder/CSV/archives, class folders, "
                                                      "photos:DIR (class folders of photos: faces found and "
                                                      "aligned), or 'synthetic'")
    parser.add_argument("--split", default="test", choices=SPLIT_CHOICES, help="the faces scored (default test)")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation for the classifier: the face "
                                                           "and its mirror, each shifted 2 pixels four ways")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    parser.add_argument("--out", help=out_help)
    add_model_arguments(parser)
    add_source_arguments(parser)


def add_train_command(sub, name: str, help: str, description: str, example: str, run) -> None:
    """A `train-*` command: its parser with the train options, calling `run`."""
    run_folder = f"runs/{example.rsplit('/', 1)[-1].removesuffix('.yaml')}"
    parser = sub.add_parser(name, help=help, description=description, epilog=examples(
        f"unveil {name} --config {example} --out {run_folder}",
        f"unveil {name} --config {example} --out {run_folder} --resume",
        f"unveil {name} --config {example} --set train.epochs=3 --device cpu"))
    add_train_arguments(parser, example)
    parser.set_defaults(run=run)


def add_class_map_argument(parser: argparse.ArgumentParser) -> None:
    """--classes: score in a coarser class view (see `unveil.classes.ClassMap`)."""
    parser.add_argument("--classes", metavar="MAP",
                        help="score in a coarser class view: valence (negative = angry+disgust+fear+sad, neutral, "
                             "positive = happy+surprise) or GROUP=CLASS+CLASS,...; a 7-class model's probabilities "
                             "are summed over each group's classes (default: each model's own classes)")


def class_map_option(args: argparse.Namespace) -> ClassMap | None:
    return ClassMap.parse(getattr(args, "classes", None), "--classes")


def add_max_yaw_argument(parser: argparse.ArgumentParser) -> None:
    """--max-yaw for the commands that read photos (predict, serve)."""
    from .predict import MAX_YAW, TURNED_AWAY

    parser.add_argument("--max-yaw", type=degrees, default=MAX_YAW, metavar="DEG",
                        help=f"a face turned further than this (yaw, degrees; default {MAX_YAW:g}, chosen on KDEF "
                             f"val) is reported with its pose, but its reading is marked '{TURNED_AWAY}' and left "
                             "out of summaries (the video timeline's chart, the page's headline); 90 keeps every face")


def degrees(text: str) -> float:
    """An argparse type for an angle limit: a number of degrees from 0 to 180."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of degrees, got {text!r}") from None
    if not 0 <= value <= 180:
        raise argparse.ArgumentTypeError(f"must be between 0 and 180 degrees, got {text}")
    return value
