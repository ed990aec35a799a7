"""Reliability and security: every bad input is an UnveilError naming the file and the problem (never a
traceback), no tampered or half-written weights load, interrupted writes leave whole sets of files,
outputs respect the umask, and no unsafe deserialisation appears in the code.

The property-based tests (hypothesis) feed random and mutated bytes, CSV rows, YAML configs and
`--set` strings to the loaders: each input must load or raise the project's own error type.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save as save_bytes

from unveil import io as uio
from unveil.checkpoint import checkpoint_paths, load_checkpoint, save_checkpoint, update_sidecar, weights_digest
from unveil.classes import CLASSES
from unveil.classify import create_classifier, load_classifier, save_classifier
from unveil.classify.config import ClassifierConfig
from unveil.config import apply_overrides, from_dict, load_config
from unveil.data import cache_dir, load_faces, resolve_source
from unveil.errors import UnveilError
from unveil.inpaint.config import InpaintConfig
from unveil.pipelines.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
FUZZ = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SCALARS = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=12)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                          max_size=3), max_leaves=6)


def loads_or_refuses(action) -> bool:
    """True if `action()` succeeded, False if it raised an UnveilError; anything else fails the test."""
    try:
        action()
    except UnveilError as exc:
        assert str(exc).strip(), "an error without a message"
        return False
    return True


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    """A tiny untrained classifier checkpoint (its weights' values do not matter here)."""
    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    save_classifier(root / "clf", create_classifier("tiny_cnn"), {"arch": "tiny_cnn", "condition": "full", "seed": 0})
    return root


def copy_checkpoint(src: Path, dst: Path) -> Path:
    for a, b in zip(checkpoint_paths(src), checkpoint_paths(dst)):
        b.write_bytes(a.read_bytes())
    return dst


def write_pair(path: Path, tensors: dict, meta: dict) -> Path:
    """A checkpoint written by hand (not through save_checkpoint), its digest made to match."""
    weights, sidecar = checkpoint_paths(path)
    weights.write_bytes(save_bytes(tensors))
    sidecar.write_text(json.dumps({**meta, "weights_sha256": weights_digest(path)}))
    return path


# --------------------------------------------------------------------------- weights


def test_tampered_weights_are_refused(classifier_dir, tmp_path):
    path = copy_checkpoint(classifier_dir / "clf", tmp_path / "tampered")
    weights = checkpoint_paths(path)[0]
    data = bytearray(weights.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    middle = header + (len(data) - header) // 2  # inside a tensor: the file still parses
    data[middle:middle + 8] = bytes(b ^ 0x5A for b in data[middle:middle + 8])
    weights.write_bytes(bytes(data))
    with pytest.raises(UnveilError, match=r"tampered\.safetensors: SHA-256 .* does not match .* tampered\.json"):
        load_classifier(path)


def test_nan_and_integer_weights_are_refused(classifier_dir, tmp_path):
    tensors, meta = load_checkpoint(classifier_dir / "clf")
    name = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1)
    nan = {**tensors, name: tensors[name].clone().fill_(float("nan"))}
    with pytest.raises(UnveilError, match=rf"nan\.safetensors: tensor '{name}' holds NaN"):
        load_classifier(write_pair(tmp_path / "nan", nan, meta))
    as_int = {**tensors, name: tensors[name].to(torch.int32)}
    with pytest.raises(UnveilError, match=rf"int: weights tensor '{name}' is int32 .* needs float32"):
        load_classifier(write_pair(tmp_path / "int", as_int, meta))
    with pytest.raises(UnveilError, match="refusing to save"):
        save_checkpoint(tmp_path / "never", nan, meta)
    assert not checkpoint_paths(tmp_path / "never")[0].exists()


@pytest.mark.parametrize("edit, message", [
    (lambda m: [m], "a sidecar must be a JSON object"),
    (lambda m: {k: v for k, v in m.items() if k != "arch"}, "no 'arch'"),
    (lambda m: {**m, "classes": list(reversed(CLASSES))}, "canonical class list"),
    (lambda m: {**m, "occlusion": "lower-half:start_row=x"}, "bad 'occlusion'"),
    (lambda m: {**m, "kind": "inpainter"}, "not a classifier checkpoint"),
    (lambda m: {**m, "arch_args": {"widths": [10**9, 10**9]}}, "cannot be built|do not match"),
    (lambda m: {**m, "arch_args": {"dropout": 0.2}}, None),  # the same tensors: loads
])
def test_sidecar_schema_is_checked_before_the_weights(classifier_dir, tmp_path, edit, message):
    path = copy_checkpoint(classifier_dir / "clf", tmp_path / "edited")
    sidecar = checkpoint_paths(path)[1]
    sidecar.write_text(json.dumps(edit(json.loads(sidecar.read_text()))))
    if message is None:
        load_classifier(path)
    else:
        with pytest.raises(UnveilError, match=message):
            load_classifier(path)


def test_a_sidecar_without_digest_loads_with_a_warning(classifier_dir, tmp_path, capsys):
    path = copy_checkpoint(classifier_dir / "clf", tmp_path / "old")
    sidecar = checkpoint_paths(path)[1]
    meta = json.loads(sidecar.read_text())
    del meta["weights_sha256"]
    sidecar.write_text(json.dumps(meta))
    load_classifier(path)
    assert "records no weights_sha256" in capsys.readouterr().err


def test_shipped_sidecars_record_their_digest():
    for sidecar in sorted((ROOT / "checkpoints").glob("*.json")):
        meta = json.loads(sidecar.read_text())
        assert meta.get("weights_sha256") == weights_digest(sidecar), sidecar.name



def test_update_sidecar_is_the_one_rewrite(classifier_dir, tmp_path):
    path = copy_checkpoint(classifier_dir / "clf", tmp_path / "scored")
    sidecar = checkpoint_paths(path)[1]
    update_sidecar(path, {"metrics": {"val": {"accuracy": 0.5}}})
    meta = json.loads(sidecar.read_text())
    assert meta["metrics"] == {"val": {"accuracy": 0.5}} and meta["weights_sha256"] == weights_digest(path)
    load_classifier(path)  # still a pair that loads
    before = sidecar.read_bytes()
    with pytest.raises(UnveilError, match="canonical class list"):
        update_sidecar(path, {"classes": list(reversed(CLASSES))})
    with pytest.raises(ValueError, match="only save_checkpoint writes it"):
        update_sidecar(path, {"weights_sha256": "0" * 64})
    assert sidecar.read_bytes() == before  # a refused change writes nothing


@FUZZ
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=4),
       cut=st.none() | st.floats(0, 1))
def test_mutated_weights_never_load_silently(classifier_dir, tmp_path, flips, cut):
    path = copy_checkpoint(classifier_dir / "clf", tmp_path / "mutated")
    weights = checkpoint_paths(path)[0]
    original = weights.read_bytes()
    data = bytearray(original)
    for where, mask in flips:
        data[int(where * len(data))] ^= mask
    if cut is not None:
        data = data[: int(cut * len(data))]
    assume(bytes(data) != original)  # two flips of one bit cancel out
    weights.write_bytes(bytes(data))
    assert not loads_or_refuses(lambda: load_classifier(path))  # every change is caught by the digest


@FUZZ
@given(key=st.sampled_from(["kind", "arch", "arch_args", "classes", "occlusion", "condition", "metrics",
                            "weights_sha256", "inpainter", "seed", "version"]), value=JSON)
def test_mutated_sidecars_load_or_raise_unveil_errors(classifier_dir, tmp_path, key, value):
    path = copy_checkpoint(classifier_dir / "clf", tmp_path / "mutated")
    sidecar = checkpoint_paths(path)[1]
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), key: value}))
    loads_or_refuses(lambda: load_classifier(path))


@FUZZ
@given(data=st.binary(max_size=300), which=st.sampled_from(["weights", "sidecar"]))
def test_random_bytes_as_a_checkpoint(classifier_dir, tmp_path, data, which):
    path = copy_checkpoint(classifier_dir / "clf", tmp_path / "random")
    checkpoint_paths(path)[0 if which == "weights" else 1].write_bytes(data)
    assert not loads_or_refuses(lambda: load_classifier(path))


# --------------------------------------------------------------------------- pairs, sets and temporaries


class Killed(BaseException):
    """Stands for a SIGKILL: nothing after it runs (not even an `except Exception`)."""


def test_a_kill_between_the_two_writes_never_leaves_a_pair_that_loads(classifier_dir, tmp_path, monkeypatch):
    import unveil.checkpoint as ckpt

    best = copy_checkpoint(classifier_dir / "clf", tmp_path / "best")
    old = load_classifier(best)[0].state_dict()
    newer = create_classifier("tiny_cnn")
    # Killed after the weights, before the sidecar: the old sidecar's digest no longer matches.
    monkeypatch.setattr(ckpt, "write_json", lambda *a, **k: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        save_classifier(best, newer, {"arch": "tiny_cnn"})
    with pytest.raises(UnveilError, match="does not match .* a save was interrupted"):
        load_classifier(best)
    monkeypatch.undo()
    # Killed before the weights were renamed into place: the old, consistent pair still loads.
    best = copy_checkpoint(classifier_dir / "clf", tmp_path / "best2")
    monkeypatch.setattr(uio.os, "replace", lambda *a: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        save_classifier(best, newer, {"arch": "tiny_cnn"})
    monkeypatch.undo()
    assert all(torch.equal(a, b) for a, b in zip(old.values(), load_classifier(best)[0].state_dict().values()))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("best2")) == ["best2.json",
                                                                                      "best2.safetensors"]


def test_an_old_sidecar_without_digest_is_removed_before_new_weights(classifier_dir, tmp_path, monkeypatch):
    import unveil.checkpoint as ckpt

    best = copy_checkpoint(classifier_dir / "clf", tmp_path / "best")
    sidecar = checkpoint_paths(best)[1]
    sidecar.write_text(json.dumps({k: v for k, v in json.loads(sidecar.read_text()).items() if k != "weights_sha256"}))
    monkeypatch.setattr(ckpt, "write_json", lambda *a, **k: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        save_classifier(best, create_classifier("tiny_cnn"), {"arch": "tiny_cnn"})
    with pytest.raises(UnveilError, match="checkpoint file not found"):
        load_classifier(best)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_are_removed_live_ones_and_users_files_kept(tmp_path):
    dead, live = dead_pid(), os.getpid()
    stale = tmp_path / f".best.json.unveil-{dead}-0badc0de.tmp"
    mine = tmp_path / f".best.json.unveil-{live}-12345678.tmp"
    stale_folder = tmp_path / f".compare.unveil-{dead}-feedf00d.tmp"
    # A user's own files, whatever they look like and however old: only Unveil's exact pattern is cleaned.
    users = [tmp_path / ".notes.backup.tmp", tmp_path / f".best.json.{dead}.0badc0de.tmp",
             tmp_path / f".best.json.unveil-{dead}-0BADC0DE.tmp", tmp_path / f"best.json.unveil-{dead}-0badc0de.tmp"]
    for f in (stale, mine, *users[1:]):
        f.write_text("partial")
    for folder in (stale_folder, users[0]):
        folder.mkdir()
        (folder / "metrics.json").write_text("{}")
    os.utime(users[1], (0, 0))  # decades old: age is no licence to delete
    uio.write_json(tmp_path / "best.json", {"ok": True})       # a write cleans up its own name
    assert not stale.exists() and mine.exists() and stale_folder.exists()
    uio.remove_stale_temps(tmp_path, recursive=True)          # what opening a run folder does
    assert not stale_folder.exists() and mine.exists()
    assert all(f.exists() for f in users) and (users[0] / "metrics.json").exists()


def test_resume_after_a_kill_cleans_temporaries_and_refuses_a_torn_last_pair(tmp_path, monkeypatch):
    from unveil.classify.config import load_classifier_config
    from unveil.classify.train import train_from_config

    cfg = load_classifier_config(CONFIGS / "classifier_synthetic.yaml",
                                 ["data.source=synthetic:n=210,seed=0", "train.epochs=2", "train.batch_size=16",
                                  "report_test=false", "device=cpu"])
    out = tmp_path / "run"
    with pytest.raises(Killed):
        train_from_config(cfg, out, on_epoch_end=lambda epoch, record: (_ for _ in ()).throw(Killed()))
    stale = out / f".last.safetensors.unveil-{dead_pid()}-0badc0de.tmp"
    stale.write_bytes(b"half a tensor")
    last = checkpoint_paths(out / "last")[0]
    last.write_bytes(last.read_bytes()[:-1] + b"\0")  # as if the next epoch's weights landed alone
    with pytest.raises(UnveilError, match=r"last\.safetensors: SHA-256 .* does not match"):
        train_from_config(cfg, out, resume=True)
    assert not stale.exists()


def fake_comparison(fail: bool, names: list[str]):
    """Stands in for the scoring: writes a report's files into the folder it is given."""
    def run(spec, models, out_dir, *args):
        out = Path(out_dir)
        (out / "metrics.json").write_text(json.dumps({"conditions": names}))
        for name in names:
            (out / f"confusion_{name}.png").write_bytes(b"png")
        if fail:
            raise Killed()
        (out / "report.md").write_text(" ".join(names))
        return {"conditions": {}, "warnings": []}
    return run


def test_compare_writes_its_folder_as_one_set(tmp_path, monkeypatch, capsys):
    from unveil.pipelines import compare

    out = tmp_path / "cmp"
    argv = ["compare", "--data", "synthetic:n=70", "--inpainters", "telea", "--no-wandb", "--out", str(out)]
    monkeypatch.setattr(compare, "run_comparison", fake_comparison(False, ["occluded", "telea", "full"]))
    assert main(argv) == 0
    monkeypatch.setattr(compare, "run_comparison", fake_comparison(True, ["occluded", "full"]))
    with pytest.raises(Killed):
        main(argv)
    assert (out / "report.md").read_text() == "occluded telea full"  # the earlier report, whole
    assert json.loads((out / "metrics.json").read_text())["conditions"] == ["occluded", "telea", "full"]
    monkeypatch.setattr(compare, "run_comparison", fake_comparison(False, ["occluded", "full"]))
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [uio.MANIFEST, "confusion_full.png", "confusion_occluded.png",
                                                     "metrics.json", "report.md"]  # no stale confusion_telea.png
    assert [p.name for p in tmp_path.iterdir()] == ["cmp"]  # no temporaries left
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(argv) == 2 and "notes.txt" in capsys.readouterr().err and (out / "notes.txt").exists()


# --------------------------------------------------------------------------- permissions


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def test_outputs_respect_the_umask(tmp_path, monkeypatch):
    from unveil.figures import save_png

    monkeypatch.setenv("UNVEIL_CACHE", str(tmp_path / "cache"))
    for mask, file_mode, dir_mode in ((0o022, 0o644, 0o755), (0o077, 0o600, 0o700)):
        out = tmp_path / f"umask{mask:o}"
        with umask(mask):
            save_classifier(out / "clf", create_classifier("tiny_cnn"), {"arch": "tiny_cnn"})
            uio.write_json(out / "metrics.json", {})
            save_png(Image.new("L", (4, 4)), out / "picture.png")
            load_faces("synthetic:n=21,seed=5", use_cache=True)
            with uio.atomic_folder(out / "report") as folder:
                (folder / "report.md").write_text("ok")
        files = [*out.glob("clf.*"), out / "metrics.json", out / "picture.png", out / "report" / "report.md",
                 *(tmp_path / "cache").glob("*.safetensors")]
        assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {f.name: oct(file_mode) for f in files}
        assert oct((out / "report").stat().st_mode & 0o777) == oct(dir_mode)
        for f in (tmp_path / "cache").glob("*"):
            f.unlink()


# --------------------------------------------------------------------------- data


def test_a_damaged_faces_cache_is_rebuilt_not_trusted(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNVEIL_CACHE", str(tmp_path / "cache"))
    source = "synthetic:n=70,seed=3"
    clean = load_faces(source)
    cache = next(cache_dir().glob("faces-*.safetensors"))
    data = bytearray(cache.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    for offset in (header + 10, len(data) - 3):  # an image pixel, a split
        data[offset] ^= 0x01
        cache.write_bytes(bytes(data))
        capsys.readouterr()
        again = load_faces(source)
        assert "stale or damaged" in capsys.readouterr().err
        assert torch.equal(again.images, clean.images) and torch.equal(again.splits, clean.splits)
        data = bytearray(cache.read_bytes())  # rebuilt: intact again


def face_png(size: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(size).integers(0, 255, (size, size), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def data_error(source: Path | str) -> str:
    with pytest.raises(UnveilError) as info:
        load_faces(str(source), use_cache=False)
    return str(info.value)


def write_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    """A zip whose bytes depend only on `members`: fixed member times, never the clock's."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data, compression)
    return path


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    """A tar (compressed as `path` says) whose bytes depend only on `members`: times, owners and modes fixed."""
    with tarfile.open(path, "w:" + (path.suffix.lstrip(".") if path.suffix in (".xz", ".gz") else "")) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def test_damaged_archives_are_data_errors(tmp_path):
    data = bytearray(write_zip(tmp_path / "faces.zip", {"happy/a.png": face_png()}).read_bytes())
    data[data.index(b"IDAT") + 20] ^= 0xFF  # the CRC is checked only while reading the member
    (tmp_path / "crc.zip").write_bytes(bytes(data))
    assert "crc.zip: cannot read archive (Bad CRC-32" in data_error(tmp_path / "crc.zip")
    faces = {f"faces/sad/{k}.png": face_png(40 + k) for k in range(40)}
    data = write_tar(tmp_path / "faces.tar.xz", faces).read_bytes()
    assert write_tar(tmp_path / "again.tar.xz", faces).read_bytes() == data  # the same bytes on any clock
    # Damage where the compressed stream is: the first block's header and data follow the 12-byte stream
    # header, so the decoder fails on its first read, before any image could be decoded.
    (tmp_path / "bad.tar.xz").write_bytes(data[:12] + bytes(32) + data[44:])
    assert "bad.tar.xz: cannot read archive" in data_error(tmp_path / "bad.tar.xz")
    middle = len(data) // 2  # deep inside the stream: the block's check catches it
    (tmp_path / "deep.tar.xz").write_bytes(data[:middle] + bytes(32) + data[middle + 32:])
    assert "deep.tar.xz: cannot read archive" in data_error(tmp_path / "deep.tar.xz")


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a 48x48 face stands for a giant image
    for size, root in ((40, "warned"), (48, "refused")):  # 1,600 px: Pillow's warning; 2,304: its error
        folder = tmp_path / root / "happy"
        folder.mkdir(parents=True)
        (folder / "a.png").write_bytes(face_png(size))
        assert "a.png: refused as a possible decompression bomb" in data_error(tmp_path / root)


def test_bad_csv_text_is_a_data_error(tmp_path):
    pixels = " ".join(["9"] * 2304)
    (tmp_path / "latin1.csv").write_bytes(f"emotion,pixels,Usage\n3,{pixels},Training\n4,{pixels},Tr\xe4ining\n"
                                          .encode("latin-1"))
    assert "latin1.csv line 3: not UTF-8 text (byte 0xe4" in data_error(tmp_path / "latin1.csv")
    (tmp_path / "quote.csv").write_text('emotion,pixels\n3,"' + pixels + "\n" + "1 2 3\n" * 30000)
    assert "quote.csv line" in data_error(tmp_path / "quote.csv")


PIXELS = " ".join(["9"] * 2303 + ["200"])
CSV_ROWS = st.tuples(st.sampled_from(["0", "3", "6"]) | st.sampled_from(["7", "-1", "x", "", "1.5"]),
                     st.just(PIXELS) | st.sampled_from([PIXELS[:-4], PIXELS + " 1", PIXELS.replace("9", "300", 1),
                                                        PIXELS.replace("9", "a", 1), '"' + PIXELS, "\x00"]),
                     st.sampled_from(["Training", "PublicTest", "PrivateTest"]) | st.sampled_from(["Bogus", ""]))


@FUZZ
@given(rows=st.lists(CSV_ROWS.map(",".join) | st.text(max_size=10), min_size=1, max_size=5),
       header=st.sampled_from(["emotion,pixels,Usage", "Emotion , Pixels,usage", "emotion,pixels", "pixels", ""]),
       junk=st.just(b"") | st.binary(max_size=8))
def test_csv_rows_load_or_raise_data_errors(tmp_path, rows, header, junk):
    path = tmp_path / "fuzz.csv"
    path.write_bytes((header + "\n" + "\n".join(rows)).encode() + junk)
    loads_or_refuses(lambda: load_faces(str(path), use_cache=False))


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, bytes]:
    """The same three faces as a zip and a tar.xz of class folders."""
    root = tmp_path_factory.mktemp("archives")
    faces = {f"train/{name}/{k}.png": face_png(40 + k) for k, name in enumerate(("happy", "sad", "fear"))}
    zipped = write_zip(root / "a.zip", faces, zipfile.ZIP_DEFLATED).read_bytes()
    tarred = write_tar(root / "a.tar.xz", {"not_an_image.zip": zipped, **faces}).read_bytes()
    return {".zip": zipped, ".tar.xz": tarred}


@FUZZ
@given(suffix=st.sampled_from([".zip", ".tar.xz", ".png"]), data=st.data())
def test_mutated_archives_and_images_load_or_raise_data_errors(archives, tmp_path, suffix, data):
    original = archives.get(suffix) or face_png()
    mutated = bytearray(original)
    for where, mask in data.draw(st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
                                          max_size=3)):
        mutated[int(where * len(mutated))] ^= mask
    cut = data.draw(st.none() | st.integers(0, len(mutated)))
    mutated = bytes(mutated[:cut]) if data.draw(st.booleans()) else data.draw(st.binary(max_size=64))
    target = tmp_path / "fuzz" / "happy" / "a.png" if suffix == ".png" else tmp_path / f"fuzz{suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(mutated)
    loads_or_refuses(lambda: load_faces(str(tmp_path / "fuzz" if suffix == ".png" else target), use_cache=False))


@FUZZ
@given(spec=st.text(max_size=20) | st.sampled_from(["n=-5", "n=20", "seed=x", "n=21,seed=-1", "n=", ",,", "n=1e3"]))
def test_synthetic_specs_parse_or_raise_data_errors(spec):
    loads_or_refuses(lambda: resolve_source(f"synthetic:{spec}"))  # parsed only: a valid n may be large


# --------------------------------------------------------------------------- configs and --set


KEYS = {"name": st.text(max_size=6), "device": st.sampled_from(["cpu", "tpu", "cuda:x", "auto", ""]),
        "data": st.fixed_dictionaries({}, optional={"limit": JSON, "source": JSON, "normalize": JSON}),
        "train": st.fixed_dictionaries({}, optional={"epochs": JSON, "lr": JSON, "batch_size": JSON,
                                                     "optim": JSON, "augment": JSON, "ema": JSON}),
        "model": st.fixed_dictionaries({}, optional={"arch": JSON, "args": JSON}),
        "sample_every": JSON, "eval_batch_size": JSON, "loss": JSON}


STAGES = {ClassifierConfig: "classifier_synthetic.yaml", InpaintConfig: "inpaint_synthetic_unet.yaml"}
PLAUSIBLE = st.sampled_from([0, 1, 3, -3, 2.5, 1e-3, "2e-3", "32", "ten", True, None, [], {}, [0.9, 1.1], "cpu",
                             "lower-half", "mask:seed=2", "sgd", "onecycle", 1.5, float("inf")])


@FUZZ
@given(config=st.fixed_dictionaries({}, optional=KEYS) | JSON, stage=st.sampled_from(list(STAGES)))
def test_yaml_configs_load_or_raise_unveil_errors(tmp_path, config, stage):
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(config))
    loads_or_refuses(lambda: load_config(stage, path))


def _dotted(d: dict, prefix: str = "") -> list[str]:
    return [k for key, v in d.items() for k in ([f"{prefix}{key}"] + (_dotted(v, f"{prefix}{key}.")
                                                                      if isinstance(v, dict) else []))]


@FUZZ
@given(stage=st.sampled_from(list(STAGES)), data=st.data())
def test_mutated_real_configs_load_or_raise_unveil_errors(tmp_path, stage, data):
    config = yaml.safe_load((CONFIGS / STAGES[stage]).read_text())
    keys = st.sampled_from(_dotted(config) + ["train.optim.momentum", "train.augment.degrees", "data.limit",
                                              "model.args.bogus", "train.nope"])
    changes = data.draw(st.lists(st.tuples(keys, PLAUSIBLE | JSON), min_size=1, max_size=3))
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(config))
    loads_or_refuses(lambda: load_config(stage, path, [f"{k}={json.dumps(v)}" for k, v in changes]))


@FUZZ
@given(text=st.text(max_size=60))
def test_yaml_text_loads_or_raises_unveil_errors(tmp_path, text):
    path = tmp_path / "fuzz.yaml"
    path.write_text((CONFIGS / "classifier_synthetic.yaml").read_text() + "\n" + text)
    loads_or_refuses(lambda: load_config(ClassifierConfig, path))


SET_KEYS = st.sampled_from(["train.epochs", "train", "train.epochs.x", "name", "model.args", "model.args.widths",
                            "train.optim.lr", "data.limit", "", "a..b", "device", "train.augment.scale"])
SET_VALUES = st.sampled_from(["3", "2.5", "true", "[unclosed", "{a: 1}", ".nan", "2e-3", "-5", "ten", "[1, 2]",
                              "", "~", "'32'"]) | st.text(max_size=12)


@FUZZ
@given(items=st.lists(st.tuples(SET_KEYS, st.sampled_from(["=", ""]), SET_VALUES).map("".join), max_size=3))
def test_set_overrides_apply_or_raise_unveil_errors(items):
    base = yaml.safe_load((CONFIGS / "classifier_synthetic.yaml").read_text())
    loads_or_refuses(lambda: from_dict(ClassifierConfig, apply_overrides(base, items), where="fuzz.yaml"))


# --------------------------------------------------------------------------- the command line


def one_line_error(argv: list[str], capsys, alone: bool = True) -> str:
    """Exit status 2 and one line `unveil: error: ...`: alone on stderr, or (`alone=False`, for input found
    bad after work began) last, after progress lines; never a traceback, nothing on stdout."""
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    errors = [line for line in lines if line.startswith("unveil: error: ")]
    assert errors == lines[-1:] and (len(lines) == 1 or not alone), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[-1]


@pytest.mark.parametrize("argv, message", [
    (["data", "preview", "synthetic:n=70", "--per-class", "-3", "--out", "x.png"], "--per-class: must be at least 1"),
    (["eval-classifier", "classifier_full", "--data", "synthetic:n=70", "--bootstrap", "-5"],
     "--bootstrap: must be at"),
    (["compare", "--data", "synthetic:n=70", "--bootstrap", "-1"], "--bootstrap: must be at least 0"),
    (["baseline", "svm", "--data", "synthetic:n=70", "--folds", "1"], "--folds: must be at least 2"),
    (["saliency", "classifier_full", "--data", "synthetic:n=70", "--out", "s.png", "--n", "x"], "whole number"),
    (["predict", "--top", "-3"], "--top: must be at least 1"),
    (["eval-inpainter", "telea", "--data", "synthetic:n=70", "--batch-size", "0"], "unrecognized arguments"),
    (["train-classifier", "--config", "configs/classifier_synthetic.yaml", "--set", "train.epochs.x=1"],
     "train.epochs is a value"),
    (["train-classifier", "--config", "configs/classifier_synthetic.yaml", "--set", "name=[unclosed"],
     "not valid YAML"),
    (["train-classifier", "--config", "configs/classifier_synthetic.yaml", "--set", "train=3"],
     "train: expected a section"),
    (["train-inpainter", "--config", "configs/inpaint_synthetic_unet.yaml", "--set", "model.args.bogus=1"],
     "model.args: generator 'unet' cannot be built"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert message in one_line_error([a.replace("s.png", str(tmp_path / "s.png")) for a in argv], capsys)


def test_unwritable_outputs_are_named(tmp_path, capsys, monkeypatch):
    (tmp_path / "a_file").write_text("")
    line = one_line_error(["data", "preview", "synthetic:n=70", "--out", tmp_path / "a_file" / "x.png"], capsys,
                          alone=False)
    assert "a_file: cannot create the folder (a file is in the way)" in line
    real_open = os.open

    def denied(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / "locked")):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    line = one_line_error(["data", "preview", "synthetic:n=70", "--out", tmp_path / "locked" / "x.png"], capsys,
                          alone=False)
    assert "locked/x.png: cannot write (Permission denied)" in line


@settings(max_examples=6, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from([["data", "preview", "synthetic:n=70", "--out", "x.png", "--per-class"],
                               ["compare", "--data", "synthetic:n=70", "--per-class"],
                               ["baseline", "svm", "--data", "synthetic:n=70", "--train-size"],
                               ["baseline", "svm", "--data", "synthetic:n=70", "--components"],
                               ["saliency", "x", "--data", "synthetic:n=70", "--out", "x.png", "--n"]]),
       value=st.integers(-10**6, 0))
def test_negative_counts_from_the_cli(option, value, capsys):
    assert "must be at least" in one_line_error([*option, str(value)], capsys)


# --------------------------------------------------------------------------- no unsafe deserialisation


UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal", "joblib"}
UNSAFE_YAML = {"load", "load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all"}


def unsafe_calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in UNSAFE_MODULES or (node.module == "yaml" and
                                                              {a.name for a in node.names} & UNSAFE_YAML):
                found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Name) and node.id in UNSAFE_MODULES:
            found.append(node.id)
        elif isinstance(node, ast.Call):
            found += _unsafe_call(node)
    return found


def _unsafe_call(node: ast.Call) -> list[str]:
    func, keywords = node.func, {k.arg: k.value for k in node.keywords}
    if isinstance(func, ast.Name) and func.id in ("eval", "exec"):
        return [f"{func.id}("]
    if not isinstance(func, ast.Attribute) or not isinstance(func.value, ast.Name):
        return []
    owner, name = func.value.id, func.attr
    if owner == "yaml" and name in UNSAFE_YAML:
        return [f"yaml.{name}("]
    if owner == "torch" and name == "load":
        safe = keywords.get("weights_only")
        return [] if isinstance(safe, ast.Constant) and safe.value is True else ["torch.load( without weights_only"]
    if owner in ("np", "numpy") and name == "load":
        risky = keywords.get("allow_pickle")
        return ["np.load(allow_pickle=True)"] if isinstance(risky, ast.Constant) and risky.value else []
    if name == "read_pickle":
        return [f"{owner}.read_pickle("]
    return []


def test_the_scan_catches_what_it_looks_for():
    bad = "import pickle\nyaml.load(s)\neval('1')\nexec('x')\ntorch.load(p)\ntorch.load(p, weights_only=False)\n"
    assert len(unsafe_calls(ast.parse(bad))) == 6
    good = "yaml.safe_load(s)\nmodel.eval()\ntorch.load(p, weights_only=True)\nnp.load(p, allow_pickle=False)\n"
    assert unsafe_calls(ast.parse(good)) == []


def test_no_unsafe_deserialisation_in_the_code():
    found = []
    for folder in ("unveil", "classify", "inpaint", "pipelines", "benchmarks", "scripts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            found += [f"{path.relative_to(ROOT)}: {what}" for what in unsafe_calls(ast.parse(path.read_text()))]
        for path in sorted((ROOT / folder).rglob("*.sh")):
            text = path.read_text()
            found += [f"{path.relative_to(ROOT)}: {w}" for w in ("pickle", "yaml.load(", "torch.load(") if w in text]
    assert not found, "\n".join(found)
