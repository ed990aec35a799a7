"""The comparison, its report and galleries (HTML and W&B), and the quickstart, on tiny models."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from pipelines.cli import main

DATA = "synthetic:n=2100,seed=0"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A full-face judge, an occluded-face classifier, and a briefly trained U-Net (tiny, seconds each)."""
    from classify import save_classifier
    from classify.train import train_quick
    from inpaint.train import load_inpaint_config, train_inpainter
    from unveil.data import load_faces

    root = tmp_path_factory.mktemp("models")
    faces = load_faces(DATA)
    judge = train_quick(faces, epochs=4, seed=0)
    save_classifier(root / "judge", judge, {"arch": "tiny_cnn", "condition": "full", "seed": 0})
    occluded = train_quick(faces, epochs=4, seed=1, occlusion="lower-half")
    save_classifier(root / "occluded", occluded, {"arch": "tiny_cnn", "condition": "occluded",
                                                  "occlusion": "lower-half", "seed": 1})
    cfg = load_inpaint_config(Path("configs/inpaint_synthetic_unet.yaml"),
                              [f"data.source={DATA}", "train.epochs=1", "train.device=cpu"])
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
            assert c["psnr"] > 0 and -1 <= c["ssim"] <= 1
    assert conditions["full"]["accuracy"] > conditions["occluded"]["accuracy"] + 0.1
    assert conditions["mean_face"]["psnr"] > conditions["occluded"]["psnr"]  # filling beats the black hole
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
    assert {"psnr", "ssim"} <= set(report["conditions"]["mean_face"])


def test_judge_that_guided_a_generator_is_flagged(models):
    from pipelines.compare import NamedInpainter, guide_warnings, load_judge

    judge = load_judge(str(models / "judge"), "cpu")
    guided = NamedInpainter("g", object(), {"guide": {"path": str(models / "judge")}})
    clean = NamedInpainter("h", object(), {"guide": {"path": str(models / "occluded")}})
    assert len(guide_warnings(judge, [guided, clean])) == 1


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


def test_quickstart_end_to_end_reduced(tmp_path):
    config = yaml.safe_load(Path("configs/quickstart.yaml").read_text())
    config["data"] = "synthetic:n=1400,seed=0"
    for stage in [*config["classifiers"].values(), *config["inpainters"].values()]:
        stage["set"] = [s for s in stage["set"] if not s.startswith("train.epochs")] + ["train.epochs=1"]
    config["compare"]["bootstrap"] = 100
    small = tmp_path / "quickstart.yaml"
    small.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    assert main(["quickstart", "--config", str(small), "--out", str(out), "--no-wandb"]) == 0
    report = json.loads((out / "compare" / "metrics.json").read_text())
    assert {"occluded", "unet", "ra_unet", "resnet_cgan", "telea", "mean_face", "full"} <= set(report["conditions"])
    assert (out / "compare" / "gallery.html").is_file() and (out / "compare" / "report.md").is_file()
