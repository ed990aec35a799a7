"""Reliability under faults: every writer (a comparison's folder, the faces cache, the face store) is killed
with SIGKILL, or interrupted with Ctrl-C, before each of its writes in turn (a training run, ~60 writes,
before writes spread over the whole run), and each writer, an evaluation report's too, is given a full
disk; two runs write one folder at once. Afterwards the previous state or
the new one is there, whole (never a mix, never neither), the next run cleans up, and a run resumes or
starts again.

Each writer runs in a forked copy of the test process (no interpreter start-up); an audit hook counts its
writes (a file opened for writing, a rename or exchange, a removal, a folder made) and kills it just
before the k-th. A full disk is RLIMIT_FSIZE: any write past a few KiB fails, as on a full tmpfs.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sys
import traceback
from pathlib import Path

import pytest
import torch
from test_reliability import CONFIGS, fake_comparison

from unveil import io as uio
from unveil.data import cache_dir, load_faces
from unveil.data.store import open_store, write_store
from unveil.pipelines.cli import main

# A forked writer that hung would hang its test: each has a generous limit instead.
pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.timeout(900)]

WRITES = {"os.rename", "os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree", "ctypes.call_function", "os.truncate"}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT
FULL_DISK = 8192   # bytes a file may grow to under the "full disk"
SOURCE = "synthetic:n=210,seed=0"
TINY_RUN = ["train-classifier", "--config", str(CONFIGS / "classifier_synthetic.yaml"), "--data", SOURCE,
            "--set", "train.epochs=2", "--set", "train.batch_size=16", "--set", "report_test=false", "--device", "cpu"]


class Ended:
    """How a forked writer ended: `killed` (by SIGKILL), else its exit `code`; `writes` it made, its stderr."""

    def __init__(self, status: int, report: str):
        self.killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        self.code = None if self.killed else os.WEXITSTATUS(status)
        lines = report.splitlines()
        self.writes = int(lines[-1].removeprefix("writes=")) if lines and lines[-1].startswith("writes=") else None
        self.err = report


def forked(action, kill_at: int | None = None, interrupt: bool = False, fsize: int | None = None,
           wait_for: int | None = None) -> Ended:
    """Run `action()` (its return value is the exit code) in a forked copy of this process: SIGKILLed (or,
    with `interrupt`, given a Ctrl-C) just before its `kill_at`-th write; with `fsize`, no file it writes
    may grow past that many bytes; with `wait_for`, it first reads one byte from that pipe (a start line)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        _child(action, kill_at, interrupt, fsize, wait_for, write)
    os.close(write)
    with os.fdopen(read) as pipe:
        report = pipe.read()
    return Ended(os.waitpid(pid, 0)[1], report)


def _child(action, kill_at, interrupt, fsize, wait_for, write) -> None:
    code = 99
    try:
        report = os.fdopen(write, "w", buffering=1)
        sys.stdout = sys.stderr = report
        torch.set_num_threads(1)  # no OpenMP pool in a forked process
        if fsize:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        if wait_for is not None:
            os.read(wait_for, 1)
        count = [0]

        def hook(event: str, args: tuple) -> None:
            if event in WRITES or (event == "open" and isinstance(args[2], int) and args[2] & WRITE_FLAGS):
                count[0] += 1
                if count[0] == kill_at:
                    if interrupt:
                        raise KeyboardInterrupt
                    os.kill(os.getpid(), signal.SIGKILL)

        sys.addaudithook(hook)
        code = action() or 0
        print(f"writes={count[0]}", file=report)
    except BaseException:  # every way out, reported: the test reads it
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def kill_points(action, most: int) -> list[int]:
    """Up to `most` write numbers spread over all of `action`'s writes (all of them when few)."""
    total = forked(action).writes
    assert total, "the writer wrote nothing"
    step = max(1, total // most)
    return sorted({*range(1, total + 1, step), total})


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if uio.is_temp(p.name))


# --------------------------------------------------------------------------- a comparison's folder


def test_compare_killed_or_interrupted_at_any_write_leaves_one_whole_report(tmp_path, monkeypatch):
    from unveil.pipelines import compare

    out = tmp_path / "cmp"
    argv = ["compare", "--data", "synthetic:n=70", "--inpainters", "telea", "--no-wandb", "--out", str(out)]
    old, new = ["occluded", "telea", "full"], ["occluded", "full"]

    def report(names):
        monkeypatch.setattr(compare, "run_comparison", fake_comparison(False, names))
        return lambda: main(argv)

    def files(names):
        return {"metrics.json", "report.md", *(f"confusion_{n}.png" for n in names), uio.MANIFEST}

    assert report(old)() == 0
    for interrupt in (False, True):
        for k in kill_points(report(new), 40):
            report(old)()  # the previous report, whole
            ended = forked(report(new), kill_at=k, interrupt=interrupt)
            assert ended.killed or ended.code in (0, 130), ended.err
            names = json.loads((out / "metrics.json").read_text())["conditions"]
            assert names in (old, new) and (out / "report.md").read_text() == " ".join(names), k
            assert {p.name for p in out.iterdir()} == files(names), k  # one set, nothing of the other
            assert report(new)() == 0 and not temporaries(tmp_path), k  # the next run cleans up


def test_a_full_disk_leaves_the_previous_report_whole(tmp_path, monkeypatch):
    from unveil.pipelines import compare

    out = tmp_path / "cmp"
    argv = ["compare", "--data", "synthetic:n=70", "--inpainters", "telea", "--no-wandb", "--out", str(out)]
    monkeypatch.setattr(compare, "run_comparison", fake_comparison(False, ["occluded", "full"]))
    assert main(argv) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def big_report(spec, models, out_dir, *args):
        (Path(out_dir) / "gallery.png").write_bytes(bytes(4 * FULL_DISK))
        return {"conditions": {}, "warnings": []}

    monkeypatch.setattr(compare, "run_comparison", big_report)
    ended = forked(lambda: main(argv), fsize=FULL_DISK)
    assert ended.code == 2 and "unveil: error: " in ended.err and "File too large" in ended.err, ended.err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and not temporaries(tmp_path)


def test_an_evaluation_report_on_a_full_disk_keeps_the_previous_one(tmp_path):
    from unveil.classify import create_classifier, save_classifier

    save_classifier(tmp_path / "clf", create_classifier("tiny_cnn"), {"arch": "tiny_cnn", "condition": "full"})
    argv = ["eval-classifier", str(tmp_path / "clf"), "--data", "synthetic:n=70", "--bootstrap", "0",
            "--out", str(tmp_path / "report")]
    assert main(argv) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "report").iterdir()}
    ended = forked(lambda: main([*argv, "--split", "val"]), fsize=2048)  # the confusion PNG will not fit
    assert ended.code == 2 and "report: cannot write (File too large)" in ended.err, ended.err
    assert {p.name: p.read_bytes() for p in (tmp_path / "report").iterdir()} == before
    assert not temporaries(tmp_path)


# --------------------------------------------------------------------------- the faces cache


def test_the_cache_killed_at_any_write_is_never_trusted_half_written(tmp_path, monkeypatch):
    monkeypatch.setenv("UNVEIL_CACHE", str(tmp_path / "cache"))
    source = "synthetic:n=70,seed=9"
    clean = load_faces(source, use_cache=False)
    load = lambda: len(load_faces(source)) and 0  # noqa: E731 - decode and write the cache
    points = kill_points(load, 40)
    for interrupt in (False, True):
        for k in points:
            for f in cache_dir().glob("*"):
                f.unlink()
            ended = forked(load, kill_at=k, interrupt=interrupt)
            assert ended.killed or ended.code == 0 or "KeyboardInterrupt" in ended.err, ended.err
            again = load_faces(source)
            assert torch.equal(again.images, clean.images) and torch.equal(again.splits, clean.splits), k
            assert not temporaries(cache_dir()), k


def test_a_cache_on_a_full_disk_costs_speed_only(tmp_path, monkeypatch):
    monkeypatch.setenv("UNVEIL_CACHE", str(tmp_path / "cache"))
    ended = forked(lambda: main(["data", "info", "synthetic:n=70,seed=8", "--json"]), fsize=FULL_DISK)
    assert ended.code == 0 and "warning: cannot write the faces cache" in ended.err and "File too large" in ended.err
    assert not list(cache_dir().glob("*")), "nothing half-written is left"


# --------------------------------------------------------------------------- the face store


def test_the_store_killed_at_any_write_is_whole_or_absent(tmp_path, synthetic_faces):
    faces = synthetic_faces.select(torch.arange(300))
    folder = tmp_path / "store"
    write = lambda: write_store(faces, folder, shard_faces=64) and 0  # noqa: E731
    expected = open_store(write_store(faces, tmp_path / "reference", shard_faces=64))
    points = kill_points(write, 40)
    shutil.rmtree(folder)
    for interrupt in (False, True):
        for k in points:
            ended = forked(write, kill_at=k, interrupt=interrupt)
            assert ended.killed or ended.code == 0 or "KeyboardInterrupt" in ended.err, ended.err
            if not folder.exists():  # not there at all: write it now
                write()
            assert torch.equal(open_store(folder).images, expected.images), k
            assert not temporaries(tmp_path), k
            shutil.rmtree(folder)


def test_a_store_on_a_full_disk_is_named_and_leaves_nothing(tmp_path):
    ended = forked(lambda: main(["data", "store", "synthetic:n=70", str(tmp_path / "store")]), fsize=FULL_DISK)
    assert ended.code == 2 and f"{tmp_path / 'store'}: cannot write (File too large)" in ended.err, ended.err
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- a training run's folder


def trained(out: Path, *extra: str):
    return lambda: main([*TINY_RUN, "--out", str(out), *extra])


def test_a_run_killed_at_any_write_resumes_or_starts_again_to_the_same_model(tmp_path):
    reference = tmp_path / "reference"
    assert forked(trained(reference)).code == 0
    expected = (reference / "best.safetensors").read_bytes()
    for k in kill_points(trained(tmp_path / "x"), 5):
        out = tmp_path / f"killed_at_{k}"
        assert forked(trained(out), kill_at=k).killed
        resumed = forked(trained(out, "--resume"))
        if resumed.code == 2 and "nothing to resume" in resumed.err:  # killed in its first epoch
            resumed = forked(trained(out))
        if resumed.code == 2:  # a torn last.* pair is refused by name, never loaded
            assert "last.safetensors: SHA-256" in resumed.err, resumed.err
            continue
        assert resumed.code == 0, resumed.err
        assert (out / "best.safetensors").read_bytes() == expected, k  # bit-exact, as if never killed
        assert not temporaries(out), k


def test_a_run_on_a_full_disk_is_named_and_starts_again_afterwards(tmp_path):
    out = tmp_path / "run"
    ended = forked(trained(out), fsize=FULL_DISK)
    assert ended.code == 2 and "cannot write (File too large)" in ended.err, ended.err
    assert forked(trained(out)).code == 0


def test_two_runs_into_one_folder_at_once_never_mix(tmp_path):
    out = tmp_path / "run"
    start_read, start_write = os.pipe()
    children = []
    for seed in (1, 2):
        pid = os.fork()
        if pid == 0:
            os.close(start_write)
            _child(trained(out, "--set", f"train.seed={seed}"), None, False, None, start_read, os.dup(2))
        children.append(pid)
    os.close(start_read)
    os.write(start_write, b"go")  # both start together
    os.close(start_write)
    codes = sorted(os.WEXITSTATUS(os.waitpid(pid, 0)[1]) for pid in children)
    assert codes == [0, 2]
    config = (out / "config.yaml").read_text()
    best = json.loads((out / "best.json").read_text())
    assert f"seed: {best['seed']}" in config  # the config and the checkpoints of one and the same run


def test_a_folder_held_by_another_process_is_refused_until_it_ends(tmp_path, capsys):
    out = tmp_path / "run"
    held_read, held_write = os.pipe()
    release_read, release_write = os.pipe()

    def hold():
        with uio.folder_lock(out):
            os.write(held_write, b"x")
            os.read(release_read, 1)
        return 0

    for end in ("released", "killed"):
        pid = os.fork()
        if pid == 0:
            _child(hold, None, False, None, None, os.dup(2))
        os.read(held_read, 1)
        capsys.readouterr()
        assert main([*TINY_RUN, "--out", str(out)]) == 2
        assert "another Unveil process is writing this folder right now" in capsys.readouterr().err
        if end == "released":
            os.write(release_write, b"x")
        else:
            os.kill(pid, signal.SIGKILL)  # the lock dies with its holder
        os.waitpid(pid, 0)
    assert main([*TINY_RUN, "--out", str(out)]) == 0
    assert not (out / uio.LOCK_NAME).exists()
