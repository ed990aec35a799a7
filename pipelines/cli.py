"""`unveil` command line. Each command group lives in its own module with a `register(subparsers)`.

stdout carries only results (JSON with --json); messages (`logging`, shown by `unveil.logs.show_messages`),
progress bars (on a terminal only), warnings and errors go to stderr. Exit status:

    0    done (a command that takes many photos reports each one it could not use on stderr)
    1    nothing could be processed: every photo given failed, each named on stderr (`unveil: <photo>: ...`)
    2    bad input, refused: one line `unveil: error: <file or option>: <problem>`, never a traceback
         (an output that cannot be written, stdout included, counts as bad input too)
    130  interrupted (Ctrl-C)
    141  stdout was closed by its reader (`unveil ... --json | head -c 10`): quietly, as a SIGPIPE would
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys

from unveil import __version__
from unveil.errors import UnveilError
from unveil.logs import show_messages
from unveil.runtime import keep_freed_memory

from . import (classifier_commands, compare_commands, data_commands, fusion_commands, hole_commands, inpainter_commands,
               photo_commands, predict_commands, quickstart, segmenter_commands, serve_commands)

COMMAND_MODULES = [data_commands, classifier_commands, inpainter_commands, compare_commands, fusion_commands,
                   photo_commands, predict_commands, segmenter_commands, hole_commands, serve_commands, quickstart]


class HelpFormatter(argparse.HelpFormatter):
    """argparse's wrapping, except for indented lines (the examples in an epilog), kept as typed."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(indent + line if line.startswith("  ") else super(HelpFormatter, self)._fill_text(
            line, width, indent) for line in text.splitlines())


class Parser(argparse.ArgumentParser):
    """argparse, with a bad option reported like any other bad input: one line, exit status 2, and help whose
    examples keep their lines.

    (argparse's own `error` prints the whole usage first; sub-commands inherit this class.)
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

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
    show_messages()
    parser = build_parser()
    stdout = sys.stdout
    sys.stdout = _Results(stdout)
    try:
        args = parser.parse_args(argv)
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # here, so that a failing stdout is reported like any other unwritable output
        return code
    except UnveilError as exc:
        print(f"unveil: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        # A path given that the system refuses by its length, wherever it is first looked at: bad input.
        print(f"unveil: error: {exc.filename}: {exc.strerror} (a name is at most 255 bytes)", file=sys.stderr)
        return 2
    except _ReaderGone:
        return 141
    except KeyboardInterrupt:
        print("unveil: interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout = stdout


class _ReaderGone(Exception):
    """stdout's reader went away (a closed pipe): nobody is left to read the results."""


class _Results:
    """stdout while a command runs: a write that fails ends the command with a clear status instead of a
    traceback (a closed pipe quietly, a full disk or /dev/full as an `unveil: error:` line). The stream is
    then pointed at /dev/null, so that Python's own flush at exit has nothing left to fail on."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        return self._guarded(self.stream.write, text)

    def flush(self) -> None:
        self._guarded(self.stream.flush)

    def _guarded(self, operation, *args):
        try:
            return operation(*args)
        except OSError as exc:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
            if isinstance(exc, BrokenPipeError):
                raise _ReaderGone() from None
            raise UnveilError(f"stdout: cannot write the results ({exc.strerror or exc})") from None

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


if __name__ == "__main__":
    sys.exit(main())
