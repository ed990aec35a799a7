"""Reliability, the first class: nothing the user has is lost. A command's --out never replaces files it did
not write (a training run's, the user's own), a saved model never replaces another, scores are recorded only
where they belong, and nothing is ever written inside the installed package.

(Kills, full disks and two runs at once, for every writer: tests/test_reliability_faults.py.)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_reliability import CONFIGS, Killed, classifier_dir, copy_checkpoint, one_line_error  # noqa: F401

from unveil.checkpoint import checkpoint_paths
from unveil.classify.evaluate import REPORT_FILES
from unveil.data import load_faces
from unveil.io import MANIFEST
from unveil.pipelines.cli import main
from unveil.io import shipped_folders

pytestmark = pytest.mark.usefixtures("one_thread")

SOURCE = "synthetic:n=210,seed=0"
TINY_RUN = ["train-classifier", "--config", str(CONFIGS / "classifier_synthetic.yaml"), "--data", SOURCE,
            "--set", "train.epochs=1", "--set", "train.batch_size=16", "--set", "report_test=false", "--device", "cpu"]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes (hidden ones included)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished one-epoch training run (config.yaml, history.json, metrics.json, last.*, best.*)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    assert main([*TINY_RUN, "--out", str(out)]) == 0
    return out


# --------------------------------------------------------------------------- report folders


def test_evaluating_into_a_training_run_folder_is_refused_and_the_run_kept(run_dir, tmp_path, capsys):
    run = Path(shutil.copytree(run_dir, tmp_path / "run"))
    before = snapshot(run)
    evaluate = ["eval-classifier", str(run / "best"), "--data", SOURCE, "--split", "val", "--bootstrap", "0"]
    line = one_line_error([*evaluate, "--out", run], capsys)
    assert "holds files that are not an evaluation report's (best.json, best.safetensors, config.yaml" in line
    assert snapshot(run) == before
    # A report folder of its own is replaced as a whole, and holds the report's three files and their record only.
    for _ in range(2):
        assert main([*evaluate, "--out", str(tmp_path / "report")]) == 0
    assert {p.name for p in (tmp_path / "report").iterdir()} == {*REPORT_FILES, MANIFEST}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left


def test_the_other_report_commands_refuse_a_run_folder(run_dir, tmp_path, capsys):
    run = Path(shutil.copytree(run_dir, tmp_path / "run"))
    before = snapshot(run)
    for argv in (["eval-inpainter", "telea", "--data", SOURCE, "--classifier", run / "best"],
                 ["baseline", "logreg", "--data", SOURCE], ["compare", "--data", SOURCE, "--no-wandb"],
                 ["eval-segmenter", "--data", SOURCE]):
        assert "config.yaml" in one_line_error([*argv, "--out", run], capsys)
    assert snapshot(run) == before


# --------------------------------------------------------------------------- run folders


def test_a_new_run_never_overwrites_the_users_files(tmp_path, capsys):
    commented = "# my own notes on this experiment\n" + (CONFIGS / "classifier_synthetic.yaml").read_text()
    cases = {"config.yaml": commented, ".notes.backup.tmp/keep.txt": "mine", "notes.txt": "mine"}
    for name, text in cases.items():
        folder = tmp_path / name.split("/")[0].replace(".", "_")
        (folder / name).parent.mkdir(parents=True)
        (folder / name).write_text(text)
        before = snapshot(folder)
        # The config passed is the very file in the folder (a user keeping the config beside the run).
        config = folder / "config.yaml" if name == "config.yaml" else CONFIGS / "classifier_synthetic.yaml"
        argv = [*TINY_RUN, "--out", folder]
        argv[argv.index("--config") + 1] = str(config)
        line = one_line_error(argv, capsys, alone=False)
        assert f"{folder} holds files ({name.split('/')[0]}); a new run starts in a new or empty folder" in line
        assert snapshot(folder) == before


def test_resume_keeps_the_users_files_that_look_like_temporaries(tmp_path, monkeypatch, capsys):
    from unveil.classify.config import load_classifier_config
    from unveil.classify.train import train_from_config

    out = tmp_path / "run"
    argv = [*TINY_RUN, "--set", "train.epochs=2", "--out", str(out)]
    cfg = load_classifier_config(CONFIGS / "classifier_synthetic.yaml",
                                 [f"data.source={SOURCE}", "train.epochs=2", "train.batch_size=16",
                                  "report_test=false", "device=cpu", f"out={out}"])
    with pytest.raises(Killed):
        train_from_config(cfg, out, on_epoch_end=lambda epoch, record: (_ for _ in ()).throw(Killed()))
    users = {".notes.backup.tmp/keep.txt": "mine", ".history.json.4242.cafef00d.tmp": "mine",
             "samples/.x.unveil-1-abc.tmp": "mine"}
    for name, text in users.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    os.utime(out / ".history.json.4242.cafef00d.tmp", (0, 0))  # however old
    assert main([*argv, "--resume"]) == 0
    assert all((out / name).read_text() == text for name, text in users.items())
    assert json.loads((out / "history.json").read_text())[-1]["epoch"] == 2


def test_a_run_killed_in_its_first_epoch_starts_again_in_its_folder(tmp_path, monkeypatch):
    from unveil.trainer import Trainer

    out = tmp_path / "run"
    monkeypatch.setattr(Trainer, "_epochs", lambda self, stop_after: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        main([*TINY_RUN, "--out", str(out)])
    assert [p.name for p in out.iterdir()] == ["config.yaml"]  # its own resolved config, nothing else
    monkeypatch.undo()
    assert main([*TINY_RUN, "--out", str(out)]) == 0
    assert main([*TINY_RUN, "--set", "train.seed=1", "--out", str(out)]) == 2  # a finished run: never again


def test_quickstart_replaces_only_a_folder_of_its_own(tmp_path, capsys):
    out = tmp_path / "quickstart"
    (out / "judge").mkdir(parents=True)
    (out / "timings.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    line = one_line_error(["quickstart", "--out", out, "--no-wandb"], capsys)
    assert "holds files that are not a quickstart's (notes.txt)" in line and snapshot(out) == before



def tiny_video(path: Path, frames: int = 3, size: tuple[int, int] = (32, 32)) -> Path:
    """A few gray frames as H.264 mp4: a video with no face, enough for the checks before any reading."""
    from unveil.pipelines.video_io import H264Writer

    with H264Writer(path, 10, size) as writer:
        for k in range(frames):
            writer.write(np.full((size[1], size[0], 3), 40 * k, np.uint8))
    return path


def test_predict_never_replaces_a_users_file_that_looks_like_its_output(tmp_path, capsys):
    clip, out = tiny_video(tmp_path / "clip.mp4"), tmp_path / "out"
    out.mkdir()
    (out / "2024_holiday.mp4").write_bytes(b"the user's own video")  # the name matches predict's [0-9]*_*.mp4
    before = snapshot(out)
    line = one_line_error(["predict", clip, "--out", out], capsys)
    assert f"{out} holds files that predict did not write there (2024_holiday.mp4" in line
    assert snapshot(out) == before


def test_predict_never_deletes_its_input_inside_out(tmp_path, capsys):
    folder = tmp_path / "D"
    folder.mkdir()
    tiny_video(folder / "000_talk.mp4")
    before = snapshot(folder)
    line = one_line_error(["predict", folder / "000_talk.mp4", "--out", folder], capsys)
    assert f"{folder / '000_talk.mp4'}: an input inside --out {folder}" in line
    assert snapshot(folder) == before
    # An earlier predict's own output, read again with the same --out, is refused too (and kept).
    (folder / MANIFEST).write_text(json.dumps(["000_talk.mp4"]))
    assert "an input inside --out" in one_line_error(["predict", folder / "000_talk.mp4", "--out", folder], capsys)
    assert (folder / "000_talk.mp4").read_bytes() == before["000_talk.mp4"]


# --------------------------------------------------------------------------- saved models and their records


def test_baseline_save_never_replaces_a_checkpoint(classifier_dir, tmp_path, capsys):  # noqa: F811
    target = copy_checkpoint(classifier_dir / "clf", tmp_path / "clf")
    before = snapshot(tmp_path)
    line = one_line_error(["baseline", "svm", "--data", SOURCE, "--save", target, "--out", tmp_path / "b"], capsys)
    assert f"{checkpoint_paths(target)[0]}: already exists; --save writes a new checkpoint" in line
    assert snapshot(tmp_path) == before


def test_record_only_on_the_data_the_checkpoint_was_trained_on(classifier_dir, tmp_path, capsys):  # noqa: F811
    path = copy_checkpoint(classifier_dir / "clf", tmp_path / "clf")
    sidecar = checkpoint_paths(path)[1]
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "data_fingerprint": load_faces(SOURCE).fingerprint}))
    before = sidecar.read_bytes()
    evaluate = ["eval-classifier", str(path), "--split", "val", "--bootstrap", "0", "--record"]
    line = one_line_error([*evaluate, "--data", "synthetic:n=210,seed=1", "--out", tmp_path / "other"], capsys,
                          alone=False)
    assert f"{sidecar}: --record stores scores only on the data the checkpoint was trained on" in line
    assert sidecar.read_bytes() == before and not (tmp_path / "other").exists()  # refused before the work
    assert main([*evaluate, "--data", SOURCE, "--out", str(tmp_path / "same")]) == 0
    assert "val" in json.loads(sidecar.read_text())["metrics"]


# --------------------------------------------------------------------------- the installed package


def package_state() -> dict[str, tuple[int, int]]:
    """Every file of the installed package's folders: (size, modification time), to see any change."""
    state = {}
    for folder in shipped_folders():
        for p in folder.rglob("*"):
            if p.is_file() and "__pycache__" not in p.parts:
                state[str(p)] = (p.stat().st_size, p.stat().st_mtime_ns)
    return state


def in_package(name: str, rest: str) -> str:
    return str(next(f for f in shipped_folders() if f.name == name) / rest)


@pytest.mark.parametrize("argv", [
    ["eval-classifier", "classifier_full", "--data", "synthetic:n=70", "--bootstrap", "0", "--out",
     in_package("checkpoints", "")],
    ["eval-classifier", "classifier_full", "--data", "synthetic:n=70", "--bootstrap", "0", "--record", "--out",
     "{tmp}"],
    ["baseline", "svm", "--data", "synthetic:n=70", "--save", in_package("checkpoints", "my_baseline"), "--out",
     "{tmp}"],
    [*TINY_RUN, "--out", in_package("configs", "run")],
    ["data", "store", "synthetic:n=70", in_package("checkpoints", "store")],
    ["compare", "--data", "synthetic:n=70", "--no-wandb", "--out", in_package("pipelines", "report")],
    ["eval-inpainter", "telea", "--data", "synthetic:n=70", "--out", in_package("unveil", "report")],
    ["eval-segmenter", "--data", "synthetic:n=70", "--out", in_package("inpaint", "report")],
    ["data", "preview", "synthetic:n=70", "--out", in_package("classify", "x.png")],
])
def test_shipped_files_are_read_only_to_unveil(argv, tmp_path, capsys):
    before = package_state()
    line = one_line_error([str(a).replace("{tmp}", str(tmp_path / "out")) for a in argv], capsys, alone=False)
    assert "shipped files are read-only to Unveil" in line
    assert package_state() == before


def test_baseline_save_onto_the_shipped_judge_is_refused(tmp_path, capsys):
    before = package_state()
    judge = in_package("checkpoints", "classifier_full")
    line = one_line_error(["baseline", "svm", "--data", "synthetic:n=70", "--save", judge, "--out", tmp_path], capsys)
    assert "classifier_full.safetensors: already exists" in line
    assert package_state() == before
