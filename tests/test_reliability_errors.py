"""Reliability, no tracebacks and no hangs: every input that cannot be used is one line `unveil: error:` naming
the file or option, with exit status 2 (1 when the input was valid but nothing could be processed; 141
when stdout's reader went away). The exit statuses are the command line's documented convention.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_reliability import (CONFIGS, classifier_dir, copy_checkpoint, data_error, face_png,  # noqa: F401
                              one_line_error, write_zip)

from unveil.checkpoint import checkpoint_paths
from unveil.classify import load_classifier
from unveil.data import load_faces
from unveil.data.store import open_store, write_store
from unveil.errors import DataError, UnveilError
from unveil.pipelines.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = ["train-classifier", "--config", str(CONFIGS / "classifier_synthetic.yaml")]
HUGE = "99999999999999999999999"


# --------------------------------------------------------------------------- archives


def zip_flagged(path: Path, flag: int = 0, method: int | None = None) -> Path:
    """A one-face zip whose headers claim `flag` (0x1: encrypted) or compression `method` (9: deflate64)."""
    data = bytearray(write_zip(path, {"happy/a.png": face_png()}).read_bytes())
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local header, central directory
        at = data.index(signature)
        data[at + flags_at] |= flag
        if method is not None:
            data[at + flags_at + 2:at + flags_at + 4] = method.to_bytes(2, "little")
    path.write_bytes(bytes(data))
    return path


def test_encrypted_and_deflate64_zips_are_named(tmp_path, capsys):
    encrypted = zip_flagged(tmp_path / "locked.zip", flag=0x1)
    assert f"{encrypted}: cannot read archive (File 'happy/a.png' is encrypted" in data_error(encrypted)
    deflate64 = zip_flagged(tmp_path / "deflate64.zip", method=9)
    assert f"{deflate64}: cannot read archive (" in data_error(deflate64)
    assert "locked.zip: cannot read archive" in one_line_error(["data", "info", encrypted, "--no-cache"], capsys,
                                                              alone=False)


# --------------------------------------------------------------------------- values too large


@pytest.mark.parametrize("argv, message", [
    (["data", "preview", "synthetic:n=70", "--seed", HUGE, "--out", "x.png"], "argument --seed: a seed is a whole"),
    (["eval-classifier", "classifier_full", "--data", "synthetic:n=70", "--seed", "-1"], "argument --seed: a seed"),
    (["compare", "--data", "synthetic:n=70", "--seed", str(2 ** 32)], "from 0 to 4294967295, got '4294967296'"),
    (["data", "info", f"synthetic:n={HUGE}"], "n must be from 21 to 1,000,000"),
    (["data", "info", f"synthetic:n=70,seed={HUGE}"], "synthetic source 'synthetic:n=70,seed=9999"),
    (["data", "info", "synthetic:n=3²"], "expected synthetic:n=INT,seed=INT"),
    ([*TRAIN, "--set", f"train.seed={HUGE}"], f"train.seed: {HUGE} is too large (integers fit in 64 bits)"),
    ([*TRAIN, "--set", f"train.seed={2 ** 40}"], "train.seed: a seed is a whole number from 0 to 4294967295"),
    ([*TRAIN, "--set", "train.batch_size=1e30"], 'train.batch_size: "1e30" is too large'),
    ([*TRAIN, "--set", f"train.epochs={HUGE}"], "train.epochs: 9999"),
    ([*TRAIN, "--set", f"data.source=synthetic:n={HUGE}"], "n must be from 21 to 1,000,000"),
])
def test_values_too_large_are_named(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert message in one_line_error(argv, capsys, alone=False)


LONG = "x" * 300   # over the 255 bytes a file name may hold


@pytest.mark.parametrize("argv", [
    ["eval-classifier", "classifier_full", "--data", "synthetic:n=70", "--bootstrap", "0", "--out", LONG],
    ["data", "preview", "synthetic:n=70", "--out", f"{LONG}.png"],
    ["data", "info", LONG], ["predict", f"{LONG}.jpg"], ["eval-holes", LONG], ["eval-photos", LONG],
    ["data", "store", "synthetic:n=70", LONG], [*TRAIN, "--out", LONG], ["train-classifier", "--config", LONG],
])
def test_a_name_too_long_for_the_file_system_is_one_line(argv, capsys, tmp_path, monkeypatch):
    """An input or an --out whose name is over the system's limit: one line naming it, wherever it is first
    looked at (eval-classifier's --out was a traceback on a check added before the work)."""
    monkeypatch.chdir(tmp_path)
    line = one_line_error(argv, capsys, alone=False)
    assert LONG in line and "File name too long" in line


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.integers(-2 ** 70, 2 ** 70) | st.sampled_from([0, 2 ** 32 - 1, 2 ** 32, -1]))
def test_any_integer_seed_is_taken_or_refused_in_one_line(value, tmp_path_factory, capsys):
    out = tmp_path_factory.mktemp("seed") / "x.png"
    capsys.readouterr()
    code = main(["data", "preview", "synthetic:n=70", "--per-class", "1", "--seed", str(value), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == (0 if 0 <= value < 2 ** 32 else 2) and "Traceback" not in err
    assert out.exists() == (code == 0)


# --------------------------------------------------------------------------- output paths


def test_store_outputs_that_cannot_be_written_are_named(tmp_path, capsys, monkeypatch):
    (tmp_path / "a_file").write_text("mine")
    line = one_line_error(["data", "store", "synthetic:n=70", tmp_path / "a_file"], capsys)
    assert "a_file: a file is there; a store is written into a new folder" in line
    assert (tmp_path / "a_file").read_text() == "mine"
    read_only = tmp_path / "ro"
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if str(path).startswith(str(read_only)) and not os.path.isdir(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    line = one_line_error(["data", "store", "synthetic:n=70", read_only / "store"], capsys, alone=False)
    assert f"{read_only}: cannot create the folder (Read-only file system)" in line


def test_a_cache_that_cannot_be_read_or_written_costs_speed_only(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("UNVEIL_CACHE", str(cache))
    clean = load_faces("synthetic:n=70,seed=4")
    real_open = os.open

    def denied(path, flags, *args, **kwargs):
        if str(path).startswith(str(cache)):
            raise OSError(errno.EROFS if flags & (os.O_WRONLY | os.O_RDWR) else errno.EACCES, "denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    real_read = Path.read_bytes

    def unreadable(self):
        if str(self).startswith(str(cache)):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(os, "open", denied)
    monkeypatch.setattr(Path, "read_bytes", unreadable)
    capsys.readouterr()
    again = load_faces("synthetic:n=70,seed=4")
    err = capsys.readouterr().err
    assert torch.equal(again.images, clean.images)
    assert "cannot read the faces cache" in err and "warning: cannot write the faces cache" in err


# --------------------------------------------------------------------------- damaged face stores


class Trap:
    """Leaves a file behind if it is ever unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def _without_digests(store: Path) -> None:
    manifest = json.loads((store / "store.json").read_text())
    manifest.pop("files")
    (store / "store.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage, message", [
    (lambda s: (s / "labels.npy").unlink(), "labels.npy: cannot read (No such file or directory)"),
    (lambda s: (_without_digests(s), np.save(s / "labels.npy", np.zeros(5, np.int64))),
     "labels.npy: expected 300 integers (one per face), got int64 [5]"),
    (lambda s: (_without_digests(s), np.save(s / "splits.npy", np.full(300, 7, np.int8))),
     "splits.npy: values must lie in 0..2"),
    (lambda s: (_without_digests(s), np.save(s / "labels.npy", np.array([Trap(s / "unpickled")] * 300, object),
                                             allow_pickle=True)), "labels.npy: not a plain numpy array"),
    (lambda s: np.save(s / "labels.npy", np.array([Trap(s / "unpickled")] * 300, object), allow_pickle=True),
     "labels.npy: SHA-256 does not match"),
    (lambda s: (s / "store.json").write_text(json.dumps({**json.loads((s / "store.json").read_text()), "shards": 3})),
     "store.json: damaged manifest"),
    (lambda s: (s / "store.json").write_text(json.dumps({k: v for k, v in json.loads(
        (s / "store.json").read_text()).items() if k != "shards"})), "store.json: damaged manifest"),
    (lambda s: (s / "store.json").write_text("{not json"), "store.json: cannot read the store's manifest"),
    (lambda s: (s / "val-00000.u8").unlink(), "val-00000.u8: -1 bytes where the manifest expects"),
])
def test_damaged_face_stores_are_named_and_never_unpickled(tmp_path, synthetic_faces, damage, message, capsys):
    store = write_store(synthetic_faces.select(torch.arange(300)), tmp_path / "store", shard_faces=64)
    damage(store)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        open_store(store)
    assert message in one_line_error(["data", "info", store], capsys)
    assert not (store / "unpickled").exists()


# --------------------------------------------------------------------------- stdout


def test_a_closed_or_full_stdout_ends_quietly_or_in_one_line(monkeypatch, capsys):
    read, write = os.pipe()
    os.close(read)  # `| head -c 10` after head has gone
    with os.fdopen(write, "w") as closed:
        monkeypatch.setattr(sys, "stdout", closed)
        assert main(["data", "info", "synthetic:n=70", "--json"]) == 141
    assert "Traceback" not in capsys.readouterr().err
    with open("/dev/full", "w") as full:
        monkeypatch.setattr(sys, "stdout", full)
        assert main(["data", "info", "synthetic:n=70", "--json"]) == 2
    monkeypatch.undo()
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "unveil: error: stdout: cannot write the results (No space left on device)")


# --------------------------------------------------------------------------- messages that name what is wrong


@pytest.mark.timeout(60)
def test_an_alias_bomb_in_a_config_is_refused_at_once_naming_the_file(tmp_path, capsys):
    levels = [f"&a0 [{', '.join(['x'] * 9)}]"] + [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 12)]
    (tmp_path / "bomb.yaml").write_text(f"name: [{', '.join(levels)}]\n")  # 9**12 values once expanded
    line = one_line_error(["train-classifier", "--config", tmp_path / "bomb.yaml"], capsys)
    assert f"{tmp_path / 'bomb.yaml'} line 1: invalid YAML (alias *a0 refused" in line


def test_an_unknown_architecture_in_a_sidecar_names_the_sidecar(classifier_dir, tmp_path):  # noqa: F811
    path = copy_checkpoint(classifier_dir / "clf", tmp_path / "clf")
    sidecar = checkpoint_paths(path)[1]
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "arch": "resnet_9000"}))
    with pytest.raises(UnveilError, match=rf"^{sidecar}: unknown classifier 'resnet_9000'; registered: "):
        load_classifier(path)


def test_an_unknown_baseline_family_in_a_sidecar_names_the_sidecar(tmp_path, synthetic_faces):
    from unveil.classify.baseline import ClassicalBaseline, fit_baseline

    train = synthetic_faces.split("train")
    baseline, _ = fit_baseline("logreg", train.float_images()[:200], train.labels[:200], 200, 8, folds=2)
    saved = baseline.save(tmp_path / "base")
    sidecar = checkpoint_paths(saved)[1]
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "arch": "deep_forest"}))
    with pytest.raises(UnveilError, match=rf"^{sidecar}: unknown classical baseline 'deep_forest'"):
        ClassicalBaseline.load(saved)


def test_photo_folders_without_photos_are_named(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "dir" / "x.jpg").mkdir(parents=True)
    for folder in (tmp_path / "empty", tmp_path / "dir", tmp_path / "dir" / "x.jpg"):
        assert f"{folder}: no photos found" in one_line_error(["predict", folder, "--out", tmp_path / "o"], capsys)


def test_nothing_processed_is_exit_status_1_and_names_each_photo(tmp_path, capsys):
    (tmp_path / "notes.jpg").write_text("not a picture")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "notes.jpg"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert f"unveil: {tmp_path / 'notes.jpg'}: cannot read it as an image" in err and "Traceback" not in err


def test_the_exit_statuses_are_documented():
    from unveil.pipelines import cli

    documented = {int(line.split()[0]) for line in cli.__doc__.splitlines() if line[:8].strip().isdigit()}
    assert documented == {0, 1, 2, 130, 141}
