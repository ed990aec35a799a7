"""Coarser class views (the valence view of the masked-FER studies): maps parse and check, probabilities
collapse, a model trained on a map records it and is scored only in it, and eval-classifier and
compare (with its cross matrix) report the view so a 3-class number never passes for a 7-class one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from unveil.checkpoint import check_sidecar
from unveil.classes import CLASSES, ClassMap, class_view
from unveil.classify import load_classifier
from unveil.classify.config import load_classifier_config
from unveil.classify.train import train_from_config
from unveil.errors import UnveilError
from unveil.pipelines.cli import main

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_CONFIG = ROOT / "configs" / "classifier_synthetic.yaml"
SOURCE = "synthetic:n=3500,seed=0"   # the synthetic_faces fixture's source
VALENCE = ["negative", "neutral", "positive"]

pytestmark = pytest.mark.usefixtures("one_thread")


def test_valence_groups_the_seven_classes():
    valence = ClassMap.parse("valence")
    assert valence.names == tuple(VALENCE)
    labels = torch.arange(len(CLASSES))   # angry disgust fear happy neutral sad surprise
    assert valence.labels(labels).tolist() == [0, 0, 0, 2, 1, 0, 2]
    probs = torch.softmax(torch.randn(5, len(CLASSES)), 1)
    collapsed = valence.collapse(probs)
    assert torch.allclose(collapsed.sum(1), torch.ones(5))
    assert torch.allclose(collapsed[:, 2], probs[:, 3] + probs[:, 6])


def test_maps_parse_from_text_and_yaml_and_are_checked():
    inline = ClassMap.parse("bad=angry+disgust+fear+sad, calm=neutral, good=happy+surprise")
    assert inline.names == ("bad", "calm", "good") and inline.groups[0][1] == ("angry", "disgust", "fear", "sad")
    assert ClassMap.parse({"low": ["anger", "disgust", "fear", "sadness", "neutral"], "high": ["joy", "surprised"]})
    assert ClassMap.parse(None) is None and ClassMap.parse("none") is None
    assert ClassMap.parse(ClassMap.parse("valence").record()) == ClassMap.parse("valence")
    with pytest.raises(UnveilError, match="none given for neutral"):
        ClassMap.parse("bad=angry+disgust+fear+sad,good=happy+surprise")
    with pytest.raises(UnveilError, match="'happy' is in two groups"):
        ClassMap.parse("a=angry+disgust+fear+sad+happy,b=neutral,c=happy+surprise")
    with pytest.raises(UnveilError, match="unknown class name 'smile'"):
        ClassMap.parse("a=angry+disgust+fear+sad,b=neutral,c=smile+surprise")
    with pytest.raises(UnveilError, match="expected GROUP=CLASS"):
        ClassMap.parse("positive")


def test_a_mapped_model_is_scored_only_in_its_map():
    meta = {"class_map": ClassMap.parse("valence").record()}
    assert class_view(meta, None).names == tuple(VALENCE) and not class_view(meta, None).collapse
    inline = ClassMap.parse("negative=angry+disgust+fear+sad,neutral=neutral,positive=happy+surprise")
    assert not class_view(meta, inline).collapse   # the same groups under another map name score the same
    with pytest.raises(UnveilError, match="cannot be scored on"):
        class_view(meta, ClassMap.parse("a=angry+disgust+fear+sad+neutral,b=happy+surprise"))
    canonical = class_view({}, ClassMap.parse("valence"))
    assert canonical.collapse and canonical.names == tuple(VALENCE)


@pytest.fixture(scope="module")
def valence_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("valence") / "run"
    cfg = load_classifier_config(SYNTHETIC_CONFIG, ["train.epochs=6", "data.limit=2000", "class_map=valence"])
    metrics = train_from_config(cfg, out)
    return out, metrics


def test_training_on_the_valence_map(valence_run):
    out, metrics = valence_run
    assert metrics["classes"] == VALENCE and metrics["class_map"]["name"] == "valence"
    test = metrics["test"]
    majority = max(c["support"] for c in test["per_class"].values()) / test["n"]   # always "negative": 4/7
    assert test["classes"] == VALENCE and test["accuracy"] > majority + 0.1
    model, meta = load_classifier(out / "best")
    assert meta["classes"] == VALENCE and model(torch.zeros(2, 1, 48, 48)).shape == (2, 3)
    sidecar = json.loads((out / "best.json").read_text())
    sidecar["classes"] = list(CLASSES)   # a 7-class list on a valence model's sidecar is a lie
    with pytest.raises(UnveilError, match="must be the groups of its class_map"):
        check_sidecar(sidecar, "best.json", "classifier")


def test_class_map_and_num_classes_must_agree():
    with pytest.raises((UnveilError, ValueError), match="num_classes"):
        load_classifier_config(SYNTHETIC_CONFIG, ["class_map=valence", "model.args.num_classes=7"])


def test_eval_classifier_in_the_valence_view(valence_run, tmp_path, capsys):
    out, _ = valence_run
    assert main(["eval-classifier", str(out / "best"), "--data", SOURCE, "--bootstrap", "50", "--json",
                 "--out", str(tmp_path / "a")]) == 0
    own = json.loads(capsys.readouterr().out)
    assert own["classes"] == VALENCE and not own["collapsed_from_canonical"] and len(own["confusion"]) == 3
    assert "3-class view" in (tmp_path / "a" / "report.md").read_text()
    assert main(["eval-classifier", str(out / "best"), "--data", SOURCE, "--classes", "none"]) == 0


def test_compare_collapses_the_judge_and_crosses_with_a_valence_model(valence_run, tmp_path, capsys):
    out, _ = valence_run
    judge = tmp_path / "judge"
    train_from_config(load_classifier_config(SYNTHETIC_CONFIG, ["train.epochs=2", "data.limit=800"]), judge)
    args = ["compare", "--data", SOURCE, "--classifier", str(judge / "best"), "--inpainters", "telea",
            "--cross", str(out / "best"), "--bootstrap", "50", "--no-lpips", "--no-wandb", "--json", "--out"]
    assert main(args + [str(tmp_path / "c"), "--classes", "valence"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["class_view"]["collapsed_from_canonical"] and report["class_view"]["classes"] == VALENCE
    assert all(c["classes"] == VALENCE for c in report["conditions"].values())
    assert len(report["cross"]["accuracy"]) == 2 and "ci95" in report["cross"]
    markdown = (tmp_path / "c" / "report.md").read_text()
    assert "3-class valence view" in markdown and "not comparable with 7-class numbers" in markdown
    # Without --classes the 7-class judge and the 3-class cross model cannot share one matrix.
    assert main(args + [str(tmp_path / "d")]) == 2
    assert "pass --classes" in capsys.readouterr().err
