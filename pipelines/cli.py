"""`unveil` command line. Each command group lives in its own module with a `register(subparsers)`.

Bad input ends as one line `unveil: error: ...` and exit status 2, never a traceback; stdout carries
only results (JSON with --json), progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys

from unveil import __version__
from unveil.errors import UnveilError
from unveil.runtime import keep_freed_memory

from . import (classifier_commands, compare_commands, data_commands, hole_commands, inpainter_commands, predict_commands,
               quickstart)

COMMAND_MODULES = [data_commands, classifier_commands, inpainter_commands, compare_commands, predict_commands,
                   hole_commands, quickstart]


class Parser(argparse.ArgumentParser):
    """argparse, with a bad option reported like any other bad input: one line, exit status 2.

    (argparse's own `error` prints the whole usage first; sub-commands inherit this class.)
    """

    def error(self, message: str):
        raise UnveilError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="unveil",
        description="Facial-expression recognition on faces whose lower half is hidden: "
                    "reconstruct the lower face, then classify — and compare occluded, "
                    "reconstructed and full faces under identical conditions.",
    )
    parser.add_argument("--version", action="version", version=f"unveil {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    keep_freed_memory()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.run(args) or 0)
    except UnveilError as exc:
        print(f"unveil: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("unveil: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
