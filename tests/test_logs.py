"""Messages go through `logging` and long loops through one progress bar: no library module prints, a
Python user silences Unveil like any library, and the command line shows warnings as `warning: ...`."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

from unveil.data.cache import read_cache
from unveil.logs import progress, show_messages

ROOT = Path(__file__).resolve().parents[1]


def _prints(path: Path) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"]


def test_no_library_module_prints():
    """unveil/, classify/ and inpaint/ print nothing; in pipelines/ only the command modules print, their
    results, to stdout (cli.py's last line of a failed command aside)."""
    found = []
    for folder in ("unveil", "classify", "inpaint", "pipelines"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            command = folder == "pipelines" and (path.name.endswith("_commands.py")
                                                 or path.name in ("quickstart.py", "cli.py"))
            for call in _prints(path):
                to_stderr = any(k.arg == "file" and ast.unparse(k.value) == "sys.stderr" for k in call.keywords)
                if not command or (to_stderr and path.name != "cli.py"):
                    found.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert not found, "use log = logging.getLogger(__name__):\n" + "\n".join(found)


def test_a_user_silences_unveil_like_any_library(tmp_path, capsys):
    damaged = tmp_path / "cache.safetensors"
    damaged.write_bytes(b"not a cache")
    assert read_cache(damaged, ("images",), "faces", "decoding again") is None
    assert "warning: " in capsys.readouterr().err and "stale or damaged" not in capsys.readouterr().err
    logger = logging.getLogger("unveil")
    level = logger.level
    try:
        logger.setLevel(logging.ERROR)
        assert read_cache(damaged, ("images",), "faces", "decoding again") is None
        assert capsys.readouterr().err == ""
    finally:
        logger.setLevel(level)
        show_messages()


def test_progress_is_quiet_off_a_terminal(capsys):
    """Under a test (stderr is no terminal) the bar draws nothing, and the loop runs as it would without it."""
    assert list(progress(range(3), "counting", unit="step")) == [0, 1, 2]
    assert sum(progress([1, 2], enabled=False)) == 3
    assert capsys.readouterr().err == ""
