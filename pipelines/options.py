"""Command-line options that several commands share, and the one way each of them is read."""

from __future__ import annotations

import argparse

from unveil.classes import parse_aliases
from unveil.data import Faces, load_faces
from unveil.runtime import PRECISIONS


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


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Where models run and come from: every command that loads a checkpoint has these."""
    parser.add_argument("--device", default="auto", help="auto (default: CUDA if present), cpu, cuda, cuda:1 ...")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="inference precision: auto (bf16 where the hardware runs it natively, as CUDA "
                             "and CPUs with AVX512-BF16 do), bf16, or fp32 (exact on any machine)")
    parser.add_argument("--checkpoints", metavar="DIR",
                        help="where shipped checkpoint names (classifier_full, inpainter_unet, ...) are "
                             "looked up (default: the models installed with Unveil)")
