"""Every registered classifier trains (forward and backward, every parameter gets a gradient), and every
shipped config in configs/classifier_*.yaml validates and builds its model."""

from pathlib import Path

import pytest
import torch

from unveil.classify import CLASSIFIERS, create_classifier
from unveil.classify.config import ClassifierConfig, load_classifier_config
from unveil.classes import NUM_CLASSES
from unveil.errors import UnveilError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("classifier_*.yaml"))


@pytest.mark.parametrize("name", CLASSIFIERS.names())
def test_forward_backward_every_classifier(name):
    torch.manual_seed(0)
    model = create_classifier(name).train()
    x = torch.rand(2, 1, 48, 48)
    features = model.forward_features(x)
    assert features.dim() == 4
    assert model.forward_head(features, pre_logits=True).dim() == 2
    logits = model(x)
    assert logits.shape == (2, NUM_CLASSES)
    logits.logsumexp(1).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"
    assert torch.isfinite(logits).all()


def test_unknown_arch_lists_the_valid_ones():
    with pytest.raises(UnveilError, match="shared_cnn"):
        create_classifier("resnet9000")


def test_configs_exist():
    names = {p.stem for p in CONFIGS}
    assert {"classifier_fer_full", "classifier_fer_occluded", "classifier_fer_guide", "classifier_synthetic"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_validates_and_builds(path):
    cfg = load_classifier_config(path)
    assert isinstance(cfg, ClassifierConfig)
    assert cfg.name == path.stem
    model = create_classifier(cfg.model.arch, **cfg.model.args)
    assert model(torch.rand(2, 1, 48, 48)).shape == (2, NUM_CLASSES)
    if cfg.condition.name != "full":
        assert cfg.condition.occlusion != "none"


def test_config_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntrain: {epochs: 2, learning_rate: 0.1}\n")
    with pytest.raises(UnveilError, match=r"bad\.yaml.*learning_rate"):
        load_classifier_config(bad)
    bad.write_text("model: {arch: resnet9000}\n")
    with pytest.raises(UnveilError, match="model.arch"):
        load_classifier_config(bad)
    bad.write_text("condition: {name: reconstructed}\n")
    with pytest.raises(UnveilError, match="inpainter"):
        load_classifier_config(bad)
    bad.write_text("condition: {name: occluded, occlusion: 'scarf'}\n")
    with pytest.raises(UnveilError, match="occlusion"):
        load_classifier_config(bad)


def test_overrides_apply():
    cfg = load_classifier_config(CONFIGS[0], ["train.epochs=3", "train.optim.lr=0.5", "model.args={hidden: [64]}"])
    assert cfg.train.epochs == 3 and cfg.train.optim.lr == 0.5 and cfg.model.args == {"hidden": [64]}


def test_open_classifier_takes_a_path_or_a_shipped_name(tmp_path):
    from unveil.classify import open_classifier, save_classifier
    from unveil.shipped import checkpoints_dir

    torch.manual_seed(0)
    model = create_classifier("tiny_cnn")
    save_classifier(tmp_path / "mine", model, {"arch": "tiny_cnn"})
    opened, meta, path = open_classifier(tmp_path / "mine")
    assert path == tmp_path / "mine" and meta["arch"] == "tiny_cnn" and not opened.training
    assert torch.equal(opened(torch.zeros(1, 1, 48, 48)), model.eval()(torch.zeros(1, 1, 48, 48)))
    # a shipped name, looked up in another checkpoints folder given
    other = tmp_path / "folder"
    save_classifier(other / "classifier_full", model, {"arch": "tiny_cnn"})
    assert open_classifier("classifier_full", checkpoints=other)[2] == other / "classifier_full"
    if (checkpoints_dir() / "classifier_full.json").exists():
        assert open_classifier("classifier_full")[2] == checkpoints_dir() / "classifier_full"
    with pytest.raises(UnveilError, match="nowhere: checkpoint not found"):
        open_classifier("nowhere", checkpoints=other)


def test_predict_proba_reads_in_eval_mode_and_restores_every_submodule_mode():
    import torch

    from unveil.classify import create_classifier, predict_proba

    model = create_classifier("tiny_cnn")
    model.eval()
    model.stages[0].train()   # a submodule left training under an eval parent: read in eval, then restored
    x = torch.rand(4, 1, 48, 48)
    first = predict_proba(model, x)
    assert model.stages[0].training and not model.training
    model.eval()
    assert torch.allclose(first, predict_proba(model, x))   # BatchNorm read its running statistics
    model.train()
    predict_proba(model, x)
    assert all(m.training for m in model.modules())
