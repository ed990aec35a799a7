"""Shared fixtures: a private cache folder, synthetic faces, and the FER2013 archives where present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from unveil.runtime import keep_freed_memory

FER_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013"


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Keep the tests' decoded-data cache away from the user's."""
    old = os.environ.get("UNVEIL_CACHE")
    os.environ["UNVEIL_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    keep_freed_memory()  # as the command line does
    yield
    if old is None:
        os.environ.pop("UNVEIL_CACHE", None)
    else:
        os.environ["UNVEIL_CACHE"] = old


@pytest.fixture(scope="module")
def one_thread():
    """Tiny CPU models gain little from a second thread but slow down several-fold when the two
    cores are shared with other work (OpenMP threads wait on each other); modules of such tests
    use one: `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def synthetic_faces():
    """3,500 synthetic faces with train/val/test splits (about 2,800 / 350 / 350)."""
    from unveil.data import load_faces

    return load_faces("synthetic:n=3500,seed=0")


@pytest.fixture(scope="session")
def fer_dir() -> Path:
    if not (FER_DIR / "fer2013-train.tar.xz").exists():
        pytest.skip(f"FER2013 archives not found at {FER_DIR}")
    return FER_DIR
