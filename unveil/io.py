"""Atomic file writes: a crash or a bad input never leaves a half-written checkpoint, cache or report.

A file is written under a temporary name `.NAME.<pid>.<random>.tmp` beside it and renamed onto NAME
only when complete; a folder of files that must agree (a comparison's report, figures and gallery) is
written the same way as a whole (`atomic_folder`). Temporaries left by a killed process are removed
the next time the same name is written, or when a run folder is opened (`remove_stale_temps`).
Outputs are created with the usual permissions (0666 less the umask, e.g. 0644), never 0600.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

from .errors import UnveilError

TMP_SUFFIX = ".tmp"
# A temporary without a live writer's pid in its name (an older Unveil's) is stale after this long.
UNNAMED_STALE_SECONDS = 3600


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds.

    A folder that cannot be written (permission denied, a path under a file) is an UnveilError naming it.
    """
    path = Path(path)
    make_folder(path.parent)
    remove_stale_temps(path.parent, path.name)
    tmp = _temp_name(path)
    try:
        # os.open applies the umask (mkstemp would make the file 0600, unreadable to anyone else).
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise UnveilError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; when the block succeeds it replaces `path` as a whole.

    So a reader sees the previous set of files or the new one, never a mix of the two nor files left
    from an earlier run. Between the two renames (microseconds) a kill leaves `path` missing and both
    sets under temporary names, which the next write cleans up: still never a mix. The caller decides
    whether `path` may be replaced (see `check_replaceable`).
    """
    path = Path(path)
    make_folder(path.parent)
    remove_stale_temps(path.parent, path.name)
    tmp, old = _temp_name(path), _temp_name(path)
    try:
        tmp.mkdir(mode=0o777)  # the umask applies
        yield tmp
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except OSError as exc:
        raise UnveilError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        for leftover in (tmp, old):
            shutil.rmtree(leftover, ignore_errors=True)


def check_replaceable(path: str | os.PathLike, owned: set[str], what: str) -> None:
    """Refuse to replace a folder that holds anything but the `owned` names or patterns (what an earlier
    run of the same command wrote): `--out .` must never delete someone's files."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UnveilError(f"{path}: --out must be a folder, and this is a file")
    if not path.is_dir():
        return
    foreign = sorted(p.name for p in path.iterdir()
                     if not any(fnmatch.fnmatchcase(p.name, o) for o in owned) and not _is_temp(p.name))
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise UnveilError(f"{path} holds files that are not {what}'s ({shown}); it would be replaced as a "
                          f"whole: choose a new or empty --out")


def make_folder(path: str | os.PathLike) -> Path:
    """mkdir -p, or an UnveilError naming the folder (e.g. a path under a file, permission denied)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UnveilError(f"{path}: cannot create the folder (a file is in the way)") from None
    except OSError as exc:
        raise UnveilError(f"{path}: cannot create the folder ({exc.strerror or exc})") from None
    return path


def remove_stale_temps(folder: str | os.PathLike, name: str | None = None, recursive: bool = False) -> None:
    """Delete the temporaries a killed writer left in `folder` (of `name` only, if given): those whose
    process is gone, and unnamed ones older than an hour. A live writer's temporaries are kept."""
    folder = Path(folder)
    pattern = f".{glob.escape(name)}.*{TMP_SUFFIX}" if name else f".*{TMP_SUFFIX}"
    try:
        found = list(folder.rglob(pattern) if recursive else folder.glob(pattern))
    except OSError:
        return
    for tmp in found:
        if _is_temp(tmp.name) and _stale(tmp):
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp) if tmp.is_dir() and not tmp.is_symlink() else tmp.unlink()


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}")


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def _stale(tmp: Path) -> bool:
    parts = tmp.name[: -len(TMP_SUFFIX)].split(".")
    if len(parts) >= 3 and parts[-2].isdigit():
        return not _alive(int(parts[-2]))
    try:
        return time.time() - tmp.lstat().st_mtime > UNNAMED_STALE_SECONDS
    except OSError:
        return False


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process (or not a pid): leave it alone
    return True


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json_text(obj))


def json_text(obj: Any) -> str:
    """What `write_json` writes: indented JSON, numpy / torch scalars and paths allowed."""
    return json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n"


def _jsonable(obj: Any) -> Any:
    """Let numpy / torch scalars and paths through json.dumps."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
