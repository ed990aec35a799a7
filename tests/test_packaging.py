"""Unveil works as an installed package, not only from its source tree: the wheel carries the shipped
models and the configs, and the commands find them from any folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project built as a wheel and unpacked into a folder of its own (what `pip install` does
    for a pure-Python wheel), away from the source tree."""
    build = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(build),
                    str(ROOT)], check=True, capture_output=True)
    [wheel] = build.glob("unveil-*.whl")
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    return site


def unveil(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    return subprocess.run([sys.executable, "-m", "unveil.pipelines.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_wheel_carries_the_models_and_configs(installed):
    package = installed / "unveil"
    for name in ("classifier_full", "classifier_occluded", "classifier_guide",
                 "inpainter_unet", "inpainter_ra_unet", "inpainter_resnet_cgan"):
        assert (package / "checkpoints" / f"{name}.safetensors").stat().st_size > 1e6, name
        assert (package / "checkpoints" / f"{name}.json").exists(), name
    assert (package / "configs" / "quickstart.yaml").exists()
    assert (package / "classify" / "__init__.py").exists() and (package / "pipelines" / "cli.py").exists()


def test_compare_uses_the_installed_models_from_another_folder(installed, tmp_path):
    proc = unveil(installed, tmp_path, "compare", "--data", "synthetic:n=700,seed=0", "--bootstrap", "0",
                  "--per-class", "1", "--no-wandb", "--json", "--out", str(tmp_path / "cmp"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert Path(report["judge"]["path"]).is_relative_to(installed)
    assert list(report["conditions"]) == ["occluded", "inpainter_ra_unet", "inpainter_resnet_cgan", "inpainter_unet",
                                          "mean_face", "navier_stokes", "telea", "full"]
    assert report["warnings"] == []  # the judge is neither a guide nor a conditioner of the shipped generators


def test_checkpoints_option_overrides_the_installed_folder(installed, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = unveil(installed, tmp_path, "eval-classifier", "classifier_full", "--data", "synthetic:n=700,seed=0",
                  "--checkpoints", str(empty), "--bootstrap", "0")
    assert proc.returncode == 2 and "checkpoint not found" in proc.stderr and "none shipped" in proc.stderr
    proc = unveil(installed, tmp_path, "eval-classifier", "classifier_full", "--data", "synthetic:n=700,seed=0",
                  "--checkpoints", str(installed / "unveil" / "checkpoints"), "--bootstrap", "0", "--json",
                  "--out", str(tmp_path / "eval"))
    assert proc.returncode == 0, proc.stderr
    assert Path(json.loads(proc.stdout)["checkpoint"]).is_relative_to(installed)
