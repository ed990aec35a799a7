"""Training on several sources (`data.mix`), crowd votes as soft labels, and the photo-like augmentation."""

from __future__ import annotations

import csv

import pytest
import torch

from unveil.augment import Augment
from unveil.classes import CLASSES, NUM_CLASSES
from unveil.classify.config import load_classifier_config
from unveil.classify.losses import classification_loss
from unveil.classify.train import train_from_config
from unveil.data.faces import epoch_order
from unveil.data.mix import FERPLUS_COLUMNS, MixPart, load_mix, majority
from unveil.errors import DataError, UnveilError

pytestmark = pytest.mark.usefixtures("one_thread")

A, B = "synthetic:n=700,seed=11", "synthetic:n=700,seed=12"
HAPPY = CLASSES.index("happy")


def _config(tmp_path, mix: str, extra: str = "", overrides=None):
    path = tmp_path / "mix.yaml"
    path.write_text(f"name: mix\nmodel: {{arch: tiny_cnn}}\ndata:\n  mix:\n{mix}\nreport_test: false\n"
                    f"train:\n  epochs: 3\n  batch_size: 64\n  seed: 0\n  select: accuracy\n"
                    f"  optim: {{name: adamw, lr: 0.004, schedule: onecycle, warmup: 0.25}}\n{extra}")
    return load_classifier_config(path, overrides)


def test_a_mix_trains_on_two_sources_and_reports_each_and_pooled(tmp_path):
    cfg = _config(tmp_path, f'    - {{source: "{A}", name: first}}\n    - {{source: "{B}", name: second, weight: 2}}')
    train_from_config(cfg, tmp_path / "run")
    import json

    history = json.loads((tmp_path / "run" / "history.json").read_text())
    last = history[-1]
    for part in ("first", "second"):
        assert last[f"val_accuracy@{part}"] > 2 / NUM_CLASSES, part   # each part read well above chance
    assert min(last["val_accuracy@first"], last["val_accuracy@second"]) <= last["val_accuracy"] <= max(
        last["val_accuracy@first"], last["val_accuracy@second"])   # the pooled score lies between the parts'
    sidecar = json.loads((tmp_path / "run" / "best.json").read_text())
    assert sidecar["data_source"].startswith("mix:") and "seed=11" in sidecar["data_source"]


def test_each_part_keeps_its_splits_and_names():
    faces = load_mix([MixPart(A, name="first"), MixPart(B, name="second")])
    assert faces.origins == ("first", "second") and len(faces) == 1400
    for name, source in (("first", A), ("second", B)):
        from unveil.data import load_faces

        alone = load_faces(source)
        part = faces.part(name)
        assert torch.equal(part.images, alone.images) and torch.equal(part.splits, alone.splits)
    with pytest.raises(DataError, match="share a name"):
        load_mix([MixPart(A, name="x"), MixPart(B, name="x")])
    with pytest.raises(UnveilError, match="no part named"):
        faces.part("third")


def test_weights_set_each_parts_share_of_the_batches():
    faces = load_mix([MixPart("synthetic:n=200,seed=11", name="small", weight=3),
                      MixPart("synthetic:n=700,seed=12", name="large", weight=1)])
    order = epoch_order(faces, 20_000, torch.Generator().manual_seed(0))
    share = (faces.origin[order] == 0).float().mean()
    assert abs(float(share) - 0.75) < 0.02   # 3 : 1, although the small part has under a third of the faces
    single = load_mix([MixPart(A)])
    laps = epoch_order(single, 2 * len(single), torch.Generator().manual_seed(0))
    assert torch.equal(torch.bincount(laps, minlength=len(single)), torch.full((len(single),), 2))  # whole laps


def test_config_refuses_a_source_and_a_mix_and_an_unknown_part(tmp_path):
    with pytest.raises(UnveilError, match="not both"):
        _config(tmp_path, f'    - {{source: "{A}"}}', overrides=["data.source=synthetic:n=100"])
    with pytest.raises(UnveilError, match="part"):
        _config(tmp_path, f'    - {{source: "{A}", name: first}}', overrides=["train.select=accuracy@other"])
    with pytest.raises(UnveilError, match="weight"):
        _config(tmp_path, f'    - {{source: "{A}", weight: 0}}')


def test_soft_labels_equal_hard_ones_when_one_hot_and_pull_towards_the_votes():
    logits, labels = torch.randn(16, NUM_CLASSES), torch.randint(0, NUM_CLASSES, (16,))
    one_hot = torch.nn.functional.one_hot(labels, NUM_CLASSES).float()
    weight = torch.rand(NUM_CLASSES) + 0.5
    assert torch.allclose(classification_loss(logits, one_hot), classification_loss(logits, labels))
    assert torch.allclose(classification_loss(logits, one_hot, weight), classification_loss(logits, labels, weight))
    assert torch.allclose(classification_loss(logits, one_hot, focal_gamma=2.0),
                          classification_loss(logits, labels, focal_gamma=2.0))
    votes = torch.tensor([[0.0, 0, 0, 0.6, 0.4, 0, 0]])
    free = torch.zeros(1, NUM_CLASSES, requires_grad=True)
    optim = torch.optim.SGD([free], lr=1.0)
    for _ in range(300):
        optim.zero_grad()
        classification_loss(free, votes).backward()
        optim.step()
    assert torch.allclose(free.softmax(1), votes, atol=0.02)   # the minimum is the vote distribution itself


def _votes_file(path, faces, vote_for):
    """A FER+-style votes CSV for `faces`: ten votes per face given by `vote_for(k)` -> {column: count}."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        columns = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                   "unknown", "NF"]
        writer.writerow(["file", "usage", *columns])
        for k, face_id in enumerate(faces.ids):
            votes = vote_for(k)
            writer.writerow([face_id, "x", *[votes.get(c, 0) for c in columns]])


def test_training_follows_the_votes_not_the_labels(tmp_path):
    """Every training face voted 8 happy, 2 neutral (whatever its label): the model trained on the votes
    reads only those two, mostly happy; faces voted not-a-face are left out of training, and val keeps its labels."""
    from unveil.data import load_faces

    faces = load_faces(A)
    votes = tmp_path / "votes.csv"
    _votes_file(votes, faces, lambda k: {"NF": 10} if k % 10 == 0 else {"happiness": 8, "neutral": 2})
    mixed = load_mix([MixPart(A, votes=str(votes))])
    train = mixed.split("train")
    assert len(train) < len(faces.split("train")) and len(mixed.split("val")) == len(faces.split("val"))
    assert torch.allclose(train.soft[:, HAPPY], torch.tensor(0.8))
    assert majority(train.soft).eq(HAPPY).all()
    cfg = _config(tmp_path, f'    - {{source: "{A}", votes: "{votes}"}}', extra="  augment: {enabled: false}\n")
    metrics = train_from_config(cfg, tmp_path / "run")
    from unveil.classify import load_classifier
    from unveil.classify.evaluate import predict_proba

    model, _ = load_classifier(tmp_path / "run" / "best")
    predicted = predict_proba(model, faces.split("val").float_images()).argmax(1)
    voted = (predicted == HAPPY) | (predicted == CLASSES.index("neutral"))
    assert voted.all() and (predicted == HAPPY).float().mean() > 0.5   # only what the votes name, happy most
    assert metrics["val"]["accuracy"] < 0.3   # against the labels, which the votes contradict


def test_a_votes_file_that_names_none_of_the_faces_is_an_error(tmp_path):
    from unveil.data import load_faces

    other = tmp_path / "votes.csv"
    _votes_file(other, load_faces(B), lambda k: {"happiness": 10})
    with pytest.raises(DataError, match="none of its file names"):
        load_mix([MixPart(A, votes=str(other))])
    bad = tmp_path / "bad.csv"
    bad.write_text("file,happiness\nx,1\n")
    with pytest.raises(DataError, match="missing columns"):
        load_mix([MixPart(A, votes=str(bad))])
    assert set(FERPLUS_COLUMNS.values()) == set(CLASSES)


def test_photo_augmentation_degrades_a_share_of_faces_and_keeps_them_stretched():
    faces = torch.rand(64, 1, 48, 48)
    faces = (faces - faces.amin((1, 2, 3), keepdim=True)) / (faces.amax((1, 2, 3), keepdim=True)
                                                             - faces.amin((1, 2, 3), keepdim=True))
    plain = Augment(flip=False, degrees=0, scale=(1, 1), shift=0)
    assert torch.allclose(plain(faces, torch.Generator().manual_seed(0)), faces, atol=1e-5)
    half = Augment(flip=False, degrees=0, scale=(1, 1), shift=0, photo=0.5)(faces, torch.Generator().manual_seed(0))
    changed = (half - faces).abs().flatten(1).mean(1) > 0.01
    assert 16 < int(changed.sum()) < 48                       # about half of the faces
    assert torch.allclose(half.amin((1, 2, 3)), torch.zeros(64), atol=1e-5)
    assert torch.allclose(half.amax((1, 2, 3)), torch.ones(64), atol=1e-5)


def test_eval_classifier_reports_the_crowds_majority_beside_the_labels(tmp_path, capsys):
    """--votes: accuracy against the votes' majority, on the faces that have one (ties and not-a-face
    majorities left out)."""
    import json

    from unveil.data import load_faces
    from unveil.pipelines.cli import main

    source = "synthetic:n=300,seed=5"
    faces = load_faces(source, "test")
    votes = tmp_path / "votes.csv"
    _votes_file(votes, faces, lambda k: {"NF": 9, "happiness": 1} if k % 3 == 0 else
                {"happiness": 5, "sadness": 5} if k % 3 == 1 else {"happiness": 6, "sadness": 4})
    assert main(["eval-classifier", "classifier_full", "--data", source, "--split", "test", "--votes", str(votes),
                 "--bootstrap", "0", "--json", "--out", str(tmp_path / "eval")]) == 0
    report = json.loads(capsys.readouterr().out)
    crowd = report["votes_majority"]
    assert crowd["n"] == sum(1 for k in range(len(faces)) if k % 3 == 2)   # only the clear happy majorities
    from unveil.classify import open_classifier
    from unveil.classify.evaluate import predict_proba

    model = open_classifier("classifier_full", "cpu")[0]
    clear = faces.select(torch.tensor([k for k in range(len(faces)) if k % 3 == 2]))
    happy = (predict_proba(model, clear.float_images()).argmax(1) == HAPPY).float().mean()
    assert crowd["accuracy"] == pytest.approx(float(happy), abs=1e-6)   # every clear majority says happy
