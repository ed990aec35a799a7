"""The comparison, its report and galleries (HTML and W&B), and the quickstart, on tiny models."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from unveil.pipelines.cli import main

DATA = "synthetic:n=2100,seed=0"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A full-face judge, an occluded-face classifier, and a briefly trained U-Net (tiny, seconds each)."""
    from unveil.classify import save_classifier
    from unveil.classify.train import train_quick
    from unveil.inpaint.config import load_inpaint_config
    from unveil.inpaint.train import train_inpainter
    from unveil.data import load_faces

    root = tmp_path_factory.mktemp("models")
    faces = load_faces(DATA)
    judge = train_quick(faces, epochs=4, seed=0)
    save_classifier(root / "judge", judge, {"arch": "tiny_cnn", "condition": "full", "seed": 0})
    occluded = train_quick(faces, epochs=4, seed=1, occlusion="lower-half")
    save_classifier(root / "occluded", occluded, {"arch": "tiny_cnn", "condition": "occluded",
                                                  "occlusion": "lower-half", "seed": 1})
    cfg = load_inpaint_config(Path("configs/inpaint_synthetic_unet.yaml"),
                              [f"data.source={DATA}", "train.epochs=1", "device=cpu"])
    train_inpainter(cfg, root / "unet")
    return root


@pytest.fixture(scope="module")
def comparison(models, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    code = main(["compare", "--data", DATA, "--classifier", str(models / "judge"),
                 "--inpainters", f"{models / 'unet' / 'best'},mean_face,telea",
                 "--cross", str(models / "occluded"), "--out", str(out), "--bootstrap", "300", "--no-wandb"])
    assert code == 0
    return out


def test_report_has_every_condition_with_intervals(comparison):
    report = json.loads((comparison / "metrics.json").read_text())
    conditions = report["conditions"]
    assert list(conditions) == ["occluded", "unet", "mean_face", "telea", "full"]
    for name, c in conditions.items():
        lo, hi = c["ci95"]["accuracy"]
        assert lo <= c["accuracy"] <= hi and hi - lo < 0.3
        assert set(c["per_class"]) and len(c["confusion"]) == 7
        if name != "full":
            assert c["psnr_hole"] > 0 and -1 <= c["ssim_hole"] <= 1
    assert conditions["full"]["accuracy"] > conditions["occluded"]["accuracy"] + 0.1
    assert conditions["mean_face"]["psnr_hole"] > conditions["occluded"]["psnr_hole"]  # filling beats the black hole
    cross = report["cross"]
    assert [r["trained_on"] for r in cross["rows"]] == ["full", "occluded"]
    occluded_col = cross["columns"].index("occluded")
    assert cross["accuracy"][1][occluded_col] > cross["accuracy"][0][occluded_col]  # trained for it, reads it better
    assert report["judge"]["weights_sha256"] and not report["warnings"]
    text = (comparison / "report.md").read_text()
    assert "judge" in text and "Cross-condition" in text


def test_gallery_references_only_existing_images(comparison):
    page = (comparison / "gallery.html").read_text()
    sources = re.findall(r"src='([^']+)'", page)
    assert len(sources) >= 7 * 2 * 5 * 2  # 7 classes x 2 faces x 5 conditions x (face + saliency)
    for src in sources:
        assert (comparison / src).is_file(), src
    assert "class='ok'" in page and "class='bad'" in page  # right and wrong cases both


def test_compare_json_on_stdout(models, tmp_path, capsys):
    code = main(["compare", "--data", DATA, "--classifier", str(models / "judge"), "--inpainters", "mean_face",
                 "--out", str(tmp_path), "--bootstrap", "100", "--per-class", "1", "--no-wandb", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)  # nothing else on stdout
    for name in ("occluded", "mean_face", "full"):
        assert {"accuracy", "macro_f1"} <= set(report["conditions"][name])
    assert {"psnr_hole", "ssim_hole"} <= set(report["conditions"]["mean_face"])


def test_one_identity_check_flags_the_guide_and_not_a_same_recipe_occluded_classifier(models):
    """Identity is the weights' SHA-256: the guide is flagged; an occluded-face conditioner that shares
    the judge's architecture, seed and data (as the shipped pair does) is not."""
    from unveil.classify import load_classifier, save_classifier
    from unveil.classify.identity import classifier_record, same_classifier
    from unveil.inpaint import create_inpainter
    from unveil.pipelines.compare import Models, NamedInpainter, judge_warnings

    judge = Models.open("cpu").judge(str(models / "judge"))
    occluded_model, _ = load_classifier(models / "occluded")
    twin = models / "occluded_same_recipe"  # arch, seed and data as the judge's; other weights, other condition
    save_classifier(twin, occluded_model, {"arch": "tiny_cnn", "condition": "occluded", "occlusion": "lower-half",
                                           "seed": 0})
    twin_record = classifier_record(twin, load_classifier(twin)[1])
    assert same_classifier(twin_record, judge.record) is None
    guided, conditioned = create_inpainter("telea"), create_inpainter("telea")
    guided.meta["guide"] = judge.record
    conditioned.meta["conditioning"] = twin_record
    warnings = judge_warnings(judge, [NamedInpainter("g", guided), NamedInpainter("c", conditioned)])
    assert len(warnings) == 1 and "GUIDE" in warnings[0] and "identical weights" in warnings[0]
    # A record without a digest (an older sidecar) falls back to the recipe, training condition included.
    recipe = {**judge.record, "data_fingerprint": "f00d"}
    no_digest = {k: v for k, v in recipe.items() if k != "weights_sha256"}
    assert same_classifier(no_digest, recipe)
    assert same_classifier({**no_digest, "occlusion": "lower-half", "condition": "occluded"}, recipe) is None


def test_wandb_offline_run_holds_the_gallery_table(models, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    code = main(["compare", "--data", DATA, "--classifier", str(models / "judge"), "--inpainters", "mean_face",
                 "--out", str(tmp_path), "--bootstrap", "100", "--per-class", "1"])
    assert code == 0
    tables = list((tmp_path / "wandb").glob("offline-run-*/files/media/table/gallery_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    assert table["columns"][:3] == ["face", "true class", "occluded"]
    assert len(table["data"]) == 7


def test_quickstart_end_to_end_reduced(tmp_path, monkeypatch, read_wandb):
    config = yaml.safe_load(Path("configs/quickstart.yaml").read_text())
    config["data"] = "synthetic:n=1400,seed=0"
    for stage in [*config["classifiers"].values(), *config["inpainters"].values()]:
        stage["set"] = [s for s in stage["set"] if not s.startswith("train.epochs")] + ["train.epochs=1"]
    config["compare"]["bootstrap"] = 100
    small = tmp_path / "quickstart.yaml"
    small.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert main(["quickstart", "--config", str(small), "--out", str(out)]) == 0
    report = json.loads((out / "compare" / "metrics.json").read_text())
    # One W&B run: every stage live on its own epoch axis, side by side, then the comparison's gallery.
    history, summary, steps = read_wandb(out)
    for stage in (f"train-{name}" for name in (*config["classifiers"], *config["inpainters"])):
        assert [row[f"{stage}/epoch"] for row in history if f"{stage}/epoch" in row] == [1], stage
        assert steps[f"{stage}/*"] == f"{stage}/epoch"
    assert any("train-unet/samples" in row for row in history) and "train-unet/val_psnr_hole" in summary
    assert any("unet/accuracy" in row for row in history)   # the comparison, beside the trainings
    assert {"occluded", "unet", "ra_unet", "resnet_cgan", "telea", "mean_face", "full"} <= set(report["conditions"])
    assert (out / "compare" / "gallery.html").is_file() and (out / "compare" / "report.md").is_file()
    # Every generator reads the occluded-face classifier and learns the expression from the guide, never
    # from the judge that scores it.
    judge = json.loads((out / "judge" / "best.json").read_text())
    for name in ("unet", "ra_unet", "resnet_cgan"):
        sidecar = json.loads((out / name / "best.json").read_text())
        assert sidecar["conditioning"]["path"] == str(out / "occluded" / "best")
        assert sidecar["guide"]["path"] == str(out / "guide" / "best")
        assert sidecar["guide"]["weights_sha256"] != judge["weights_sha256"] and sidecar["loss"]["expression"] > 0


def test_quickstart_scores_only_val_or_test_faces(tmp_path):
    from unveil.errors import UnveilError
    from unveil.pipelines.quickstart import load_quickstart

    config = yaml.safe_load(Path("configs/quickstart.yaml").read_text())
    config["compare"]["split"] = "train"
    bad = tmp_path / "quickstart.yaml"
    bad.write_text(yaml.safe_dump(config))
    with pytest.raises(UnveilError, match=r"quickstart\.yaml: compare\.split must be 'val' or 'test', not 'train'"):
        load_quickstart(bad)
    config["compare"]["split"] = "val"
    bad.write_text(yaml.safe_dump(config))
    assert load_quickstart(bad).compare.split == "val"
