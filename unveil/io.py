"""Atomic file writes: a crash or a bad input never leaves a half-written checkpoint, cache or report.

A file is written under a temporary name `.NAME.unveil-<pid>-<random>.tmp` beside it and renamed onto
NAME only when complete; a folder of files that must agree (a comparison's report, figures and gallery,
a face store) is written the same way as a whole (`atomic_folder`, `output_folder`); a command's --out
records the names it wrote (`MANIFEST`) and is replaced later only when it holds nothing else. Temporaries left by
a killed process are removed the next time the same name is written, or when a run folder is opened
(`remove_stale_temps`): only names of that exact pattern whose process is gone, never a user's file.
A folder one process writes for a long time (a training run) is held with `folder_lock`. Nothing is
ever written inside the installed package (`check_writable`). Outputs are created with the usual
permissions (0666 less the umask, e.g. 0644), never 0600.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import fnmatch
import functools
import glob
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import UnveilError

# What `pip install` puts in place: the code, the shipped weights and the configs (read-only to Unveil).
PACKAGES = ("unveil", "unveil.photo", "unveil.classify", "unveil.inpaint", "unveil.pipelines", "unveil.checkpoints",
            "unveil.configs")

# `.NAME.unveil-<pid>-<8 hex digits>.tmp`: a name no user would choose, so cleaning never touches theirs.
TEMP_NAME = re.compile(r"\.(?P<name>.+)\.unveil-(?P<pid>\d+)-[0-9a-f]{8}\.tmp")
LOCK_NAME = ".unveil.lock"
MANIFEST = ".unveil-outputs.json"   # in a folder written as one set: the names its command wrote there
_held: set[str] = set()   # folders this process holds (`folder_lock` is re-entrant within a process)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds.

    A folder that cannot be written (permission denied, a path under a file, a full disk) is an
    UnveilError naming it.
    """
    path = check_writable(path)
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
def atomic_folder(path: str | os.PathLike, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; when the block succeeds it takes the place of `path` whole.

    The new set and the previous one are exchanged in one step (Linux's renameat2), so a reader, or a
    kill at any moment, finds the previous set of files or the new one, never a mix, never neither, and
    no file left from an earlier run. With `replace=False` the folder must be new (or empty): an
    existing set is never replaced. The caller decides whether `path` may be replaced
    (`check_replaceable`; `output_folder` does both).
    """
    path = check_writable(path)
    make_folder(path.parent)
    remove_stale_temps(path.parent, path.name)
    tmp = _temp_name(path)
    try:
        tmp.mkdir(mode=0o777)  # the umask applies
        yield tmp
        _put_folder(tmp, path, replace)
    except OSError as exc:
        raise UnveilError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the new set if it failed, else the previous one


@contextlib.contextmanager
def output_folder(path: str | os.PathLike, owned: set[str], what: str,
                  inputs: Iterable[str | os.PathLike] = ()) -> Iterator[Path]:
    """A command's --out folder: refused if it holds anything the command did not write, or one of its
    `inputs` (`check_replaceable`), else written as one set (`atomic_folder`) with the record of its names
    (`MANIFEST`) that lets the next run replace it. Yields the folder to write into."""
    check_replaceable(path, owned, what, inputs)
    with atomic_folder(path) as folder:
        yield folder
        record_outputs(folder, [n for n in os.listdir(folder) if not is_temp(n)])


def record_outputs(folder: str | os.PathLike, names: Iterable[str]) -> None:
    """Write `folder`'s MANIFEST: the names its command wrote (or will write), all it may replace later."""
    write_json(Path(folder) / MANIFEST, sorted(set(names) - {MANIFEST}))


def _put_folder(new: Path, path: Path, replace: bool) -> None:
    """Move folder `new` to `path`; an existing `path` (when `replace`) is exchanged with it in one step,
    so that afterwards `new` holds the previous set."""
    try:
        os.rename(new, path)  # a new (or empty) folder: one rename
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not replace:
            raise
    if not _exchange(new, path):
        # No atomic exchange here (not Linux, or a filesystem without it): two renames, with Ctrl-C
        # held back between them. Only a SIGKILL in those microseconds leaves `path` missing.
        old = _temp_name(path)
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            os.rename(path, old)
            os.rename(new, path)
            os.rename(old, new)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (renameat2 RENAME_EXCHANGE); False where the system cannot."""
    rename = getattr(_libc(), "renameat2", None)
    if rename is None:
        return False
    at_cwd, exchange = -100, 2
    if rename(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


@functools.cache
def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def check_replaceable(path: str | os.PathLike, owned: set[str], what: str,
                      inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Refuse to replace a folder that holds anything its command did not write: every entry must match
    the `owned` names or patterns and be listed in the folder's MANIFEST, written with the set. A user's
    file that merely looks like an output (`2024_holiday.mp4` beside predict's `000_clip.mp4`) is never
    taken for one, and `--out .` never deletes someone's files. An input inside the folder is refused too:
    replacing the folder would delete it."""
    path = check_writable(path)
    inside = [str(i) for i in inputs if os.path.exists(i) and _within(i, path)]
    if inside:
        raise UnveilError(f"{shown_names(inside)}: an input inside --out {path}, which is replaced as a whole "
                          f"when written: choose another --out")
    names = _entries(path)
    foreign = [n for n in names if not any(fnmatch.fnmatchcase(n, o) for o in owned)]
    if foreign:
        raise UnveilError(f"{path} holds files that are not {what}'s ({shown_names(foreign)}); it would be "
                          f"replaced as a whole: choose a new or empty --out")
    unrecorded = sorted(set(names) - set(_recorded(path)))
    if unrecorded:
        raise UnveilError(f"{path} holds files that {what} did not write there ({shown_names(unrecorded)}: "
                          f"not in its record, {MANIFEST}); it would be replaced as a whole: choose a new or "
                          f"empty --out")


def _entries(path: Path) -> list[str]:
    """The names in folder `path` (none if it does not exist), less Unveil's temporaries and record."""
    try:
        if not path.is_dir():
            if os.path.lexists(path):
                raise UnveilError(f"{path}: --out must be a folder, and this is a file")
            return []
        return sorted(n for n in os.listdir(path) if n != MANIFEST and not is_temp(n))
    except OSError as exc:
        raise UnveilError(f"{path}: cannot use it as --out ({exc.strerror or exc})") from None


def _recorded(path: Path) -> list[str]:
    """The names folder `path`'s MANIFEST lists (none when it is missing or not a list of names)."""
    try:
        names = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return names if isinstance(names, list) and all(isinstance(n, str) for n in names) else []


def _within(inner: str | os.PathLike, folder: Path) -> bool:
    inner, folder = Path(os.path.realpath(inner)), Path(os.path.realpath(folder))
    return inner == folder or folder in inner.parents


def shown_names(names: list[str], most: int = 5) -> str:
    """A few names of a list, for a message."""
    return ", ".join(names[:most]) + (" ..." if len(names) > most else "")


@functools.cache
def shipped_folders() -> tuple[Path, ...]:
    """The installed package's folders (found without importing the stages), symbolic links resolved."""
    return tuple(Path(os.path.realpath(folder)) for name in PACKAGES
                 for folder in importlib.util.find_spec(name).submodule_search_locations)


def check_writable(path: str | os.PathLike) -> Path:
    """`path`, unless it lies inside the installed package (its code, the shipped checkpoints and
    configs): shipped files are read-only to Unveil, whatever the file system allows."""
    path = Path(path)
    real = Path(os.path.realpath(path))
    for folder in shipped_folders():
        if real == folder or folder in real.parents:
            raise UnveilError(f"{path}: inside the installed Unveil package ({folder}); shipped files are "
                              f"read-only to Unveil: write somewhere else")
    return path


def make_folder(path: str | os.PathLike) -> Path:
    """mkdir -p, or an UnveilError naming the folder (e.g. a path under a file, permission denied)."""
    path = check_writable(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UnveilError(f"{path}: cannot create the folder (a file is in the way)") from None
    except OSError as exc:
        raise UnveilError(f"{path}: cannot create the folder ({exc.strerror or exc})") from None
    return path


@contextlib.contextmanager
def folder_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold folder `path` (made if missing) for this process while the block runs: another process asking
    for it gets an UnveilError, so two runs never write one folder at once. Re-entrant within a process.
    The lock (flock on `.unveil.lock`) ends with the process, however it ends, even by SIGKILL."""
    folder = make_folder(path)
    key = os.path.realpath(folder)
    if key in _held:
        yield folder
        return
    fd = _take_lock(folder)
    _held.add(key)
    try:
        yield folder
    finally:
        _held.discard(key)
        with contextlib.suppress(OSError):
            os.unlink(folder / LOCK_NAME)  # while still held: the next taker checks it got this very file
        os.close(fd)


def _take_lock(folder: Path) -> int:
    lock = folder / LOCK_NAME
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise UnveilError(f"{folder}: cannot write ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UnveilError(f"{folder}: another Unveil process is writing this folder right now; wait for "
                              f"it to end, or choose another --out") from None
        with contextlib.suppress(OSError):
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                return fd
        os.close(fd)  # the holder removed this file as we locked it: lock the current one


def remove_stale_temps(folder: str | os.PathLike, name: str | None = None, recursive: bool = False) -> None:
    """Delete the temporaries a killed writer left in `folder` (of `name` only, if given): names of
    Unveil's own pattern whose process is gone. A live writer's are kept, and so is every other file."""
    folder = Path(folder)
    pattern = f".{glob.escape(name)}.unveil-*.tmp" if name else ".*.unveil-*.tmp"
    try:
        found = list(folder.rglob(pattern) if recursive else folder.glob(pattern))
    except OSError:
        return
    for tmp in found:
        match = TEMP_NAME.fullmatch(tmp.name)
        if match and (name is None or match["name"] == name) and not _alive(int(match["pid"])):
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp) if tmp.is_dir() and not tmp.is_symlink() else tmp.unlink()


def is_temp(name: str) -> bool:
    """Whether `name` is one of Unveil's temporaries (a file or folder being written)."""
    return TEMP_NAME.fullmatch(name) is not None


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.unveil-{os.getpid()}-{secrets.token_hex(4)}.tmp")


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
