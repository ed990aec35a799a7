"""Degenerate faces: constant and nearly constant images and exact copies (within and across splits)
are found, listed by `unveil data info --check`, dropped from training on request and left out of a
score with --exclude-degenerate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unveil.classify.config import load_classifier_config
from unveil.classify.train import train_from_config
from unveil.data import Faces, load_faces
from unveil.data.degenerate import find_degenerate, without_degenerate
from unveil.pipelines.cli import main

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_CONFIG = ROOT / "configs" / "classifier_synthetic.yaml"
SOURCE = "synthetic:n=3500,seed=0"   # the synthetic_faces fixture's source

pytestmark = pytest.mark.usefixtures("one_thread")


def planted(faces: Faces) -> tuple[Faces, dict]:
    """`faces` with known degenerate faces written over some of them: what was planted, by index."""
    images, splits = faces.images.clone(), faces.splits
    train, val, test = (torch.nonzero(splits == s).squeeze(1).tolist() for s in range(3))
    plan = {"constant": [train[0], test[0]], "nearly": [train[1]], "leak": (train[2], test[1]),
            "within": (train[3], train[4]), "leak_val": (train[5], val[0])}
    images[train[0]] = 0
    images[test[0]] = 200
    speckled = torch.full((48, 48), 230, dtype=torch.uint8)
    speckled[20:22, 10:12] = 0   # a blank page with a speck of text: 4 of 2,304 pixels
    images[train[1]] = speckled
    for a, b in (plan["leak"], plan["within"], plan["leak_val"]):
        images[b] = images[a]
    return Faces(images, faces.labels, splits, faces.ids, "planted", "planted"), plan


@pytest.fixture(scope="module")
def faces(synthetic_faces):
    return planted(synthetic_faces)


def test_find_degenerate_finds_what_was_planted_and_nothing_else(faces):
    found_in, plan = faces
    found = find_degenerate(found_in)
    assert found.constant.nonzero().squeeze(1).tolist() == sorted(plan["constant"])
    assert found.nearly_constant.nonzero().squeeze(1).tolist() == plan["nearly"]
    planted = (plan["leak"], plan["within"], plan["leak_val"])
    assert sorted(map(sorted, found.groups)) == sorted(sorted(p) for p in planted)
    flagged = found.flagged(found_in.splits).nonzero().squeeze(1).tolist()
    # both sides of a cross-split copy; only the later copy within a split
    expected = {*plan["constant"], *plan["nearly"], *plan["leak"], *plan["leak_val"], plan["within"][1]}
    assert set(flagged) == expected


def test_summary_counts_copies_across_splits(faces):
    found_in, _ = faces
    summary = find_degenerate(found_in).summary(found_in)
    dup = summary["duplicates"]
    assert dup["groups"] == 3 and dup["within_split"] == {"train": {"groups": 1, "faces": 2}}
    assert dup["across_splits"] == {"train+val": {"groups": 1, "faces": 2}, "train+test": {"groups": 1, "faces": 2}}
    assert dup["copied_in_another_split"]["test"] == {"train": 1}
    assert summary["constant"]["by_split"] == {"train": 1, "val": 0, "test": 1}
    assert summary["flagged"] == {"train": 5, "val": 1, "test": 2}


def test_without_degenerate_scores_the_rest_and_says_why(faces):
    found_in, plan = faces
    kept, record = without_degenerate(found_in, "test")
    test = found_in.split("test")
    assert len(kept) == len(test) - 2 and record["excluded"] == 2
    assert record["constant"] == 1 and record["copies"] == 1 and record["kept"] == len(kept)
    assert found_in.ids[plan["leak"][1]] not in kept.ids and found_in.ids[plan["constant"][1]] not in kept.ids


def test_synthetic_faces_are_clean(synthetic_faces):
    found = find_degenerate(synthetic_faces)
    assert not found.constant.any() and not found.nearly_constant.any() and found.groups == []


@pytest.fixture(scope="module")
def folder_set(tmp_path_factory, synthetic_faces):
    """A class-folder set in train/ and test/ folders: a blank face, and one test face that is a training face."""
    root = tmp_path_factory.mktemp("folders")
    picks = synthetic_faces.images[:12].numpy()
    for split, rows in (("train", range(0, 8)), ("test", range(8, 12))):
        for k in rows:
            (root / split / "happy").mkdir(parents=True, exist_ok=True)
            Image.fromarray(picks[k]).save(root / split / "happy" / f"{k}.png")
    Image.fromarray(np.full((48, 48), 90, np.uint8)).save(root / "train" / "happy" / "blank.png")
    Image.fromarray(picks[3]).save(root / "test" / "happy" / "leak.png")
    return root


def test_data_info_check_lists_them(folder_set, capsys):
    assert main(["data", "info", str(folder_set), "--check", "--no-cache"]) == 0
    text = capsys.readouterr().out
    assert "degenerate faces:" in text and "constant               1" in text and "blank.png" in text
    assert "test faces with a copy in train 1" in text and "leak.png" in text
    assert main(["data", "info", str(folder_set), "--check", "--json", "--no-cache"]) == 0
    check = json.loads(capsys.readouterr().out)["check"]
    # (a set without a val folder has some training faces moved to val: count over the splits)
    assert check["flagged"]["test"] == 1 and sum(check["flagged"].values()) == 3 and check["duplicates"]["groups"] == 1


def test_drop_degenerate_in_training_is_recorded(tmp_path, capsys):
    cfg = load_classifier_config(SYNTHETIC_CONFIG, ["train.epochs=1", "data.limit=200", "data.drop_degenerate=true"])
    train_from_config(cfg, tmp_path / "run")
    assert "drop_degenerate: 0 of" in capsys.readouterr().err   # synthetic faces: nothing to drop
    assert "drop_degenerate: true" in (tmp_path / "run" / "config.yaml").read_text()


def test_drop_degenerate_leaves_the_flagged_training_faces_out(faces):
    found_in, plan = faces
    cfg = load_classifier_config(SYNTHETIC_CONFIG, ["data.drop_degenerate=true"])
    train, val, test = cfg.data.splits(found_in, seed=0)
    dropped = {*plan["constant"][:1], *plan["nearly"], plan["leak"][0], plan["within"][1], plan["leak_val"][0]}
    assert len(train) == len(found_in.split("train")) - len(dropped)
    assert not dropped & {found_in.ids.index(i) for i in train.ids}
    assert len(val) == len(found_in.split("val")) and len(test) == len(found_in.split("test"))


def test_eval_classifier_exclude_degenerate(tmp_path, capsys):
    ckpt = tmp_path / "clf"
    cfg = load_classifier_config(SYNTHETIC_CONFIG, ["train.epochs=1", "data.limit=300"])
    train_from_config(cfg, ckpt)
    assert main(["eval-classifier", str(ckpt / "best"), "--data", SOURCE, "--exclude-degenerate", "--bootstrap", "0",
                 "--json", "--out", str(tmp_path / "eval")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["excluded_degenerate"]["excluded"] == 0 and report["n"] == len(load_faces(SOURCE, "test"))
    assert main(["eval-classifier", str(ckpt / "best"), "--data", SOURCE, "--exclude-degenerate", "--record"]) == 2
    assert "reported, not recorded" in capsys.readouterr().err
