"""The command line: help everywhere, JSON on stdout only, clear errors instead of tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from unveil.pipelines.cli import build_parser, main


def _subcommands(parser):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield name, sub
                yield from _subcommands(sub)


def test_help_on_every_subcommand(capsys):
    parser = build_parser()
    names = [name for name, _ in _subcommands(parser)]
    assert "data" in names and "info" in names and "preview" in names
    for _, sub in _subcommands(parser):
        assert sub.format_help().strip()
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0


def test_every_command_shows_examples_that_parse():
    """Every command's --help ends with examples, one per line as typed, and each one parses (the webcam one
    and redirections aside, it is what a user would run)."""
    parser = build_parser()
    for name, sub in _subcommands(parser):
        if any(a.__class__.__name__ == "_SubParsersAction" for a in sub._actions):
            continue   # a group (data): its actions carry the examples
        text = sub.format_help()
        assert "\nexamples:\n  unveil " in text, name
        for line in text.split("\nexamples:\n", 1)[1].splitlines():
            argv = line.split("#")[0].split(">")[0].split()[1:]
            parser.parse_args(argv)   # a bad example raises UnveilError naming the option


def test_one_name_per_option_across_commands():
    """The bootstrap resamples are --bootstrap in every command that draws them (--n-boot, the older name,
    is still read but never shown)."""
    parser = build_parser()
    for command in ("compare", "eval-photos", "eval-classifier", "baseline"):
        sub = dict(_subcommands(parser))[command]
        assert "--bootstrap" in sub.format_help() and "--n-boot" not in sub.format_help(), command
    args = parser.parse_args(["eval-classifier", "classifier_full", "--data", "synthetic", "--n-boot", "7"])
    assert args.bootstrap == 7


def test_data_info_json(capsys):
    assert main(["data", "info", "synthetic:n=700,seed=1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total"] == 700 and sum(out["splits"].values()) == 700
    assert set(out["counts"]["train"]) == {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}


def test_data_preview_writes_png(tmp_path):
    for occlusion in ("lower-half", "mask"):
        out = tmp_path / f"{occlusion}.png"
        assert main(["data", "preview", "synthetic:n=700,seed=1", "--occlusion", occlusion, "--out", str(out)]) == 0
        with Image.open(out) as img:
            assert img.width > 300 and img.height > 300


@pytest.mark.parametrize("args, message", [
    (["data", "info", "/nonexistent/dir"], "no such file or folder"),
    (["data", "preview", "synthetic:n=700", "--occlusion", "bogus", "--out", "x.png"], "unknown occlusion kind"),
])
def test_bad_input_is_one_clear_line(args, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "unveil.pipelines.cli", *args], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_bad_csv_from_the_cli(tmp_path):
    bad = tmp_path / "fer.csv"
    bad.write_text("emotion,pixels,Usage\n0," + " ".join(["1"] * 2303) + ",Training\n")
    result = subprocess.run([sys.executable, "-m", "unveil.pipelines.cli", "data", "info", str(bad)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "fer.csv line 2: expected 2304 pixels, got 2303" in result.stderr
    assert "Traceback" not in result.stderr
