"""Shared fixtures: a private cache folder, synthetic faces, the FER2013 archives where present, and a reader
of offline W&B runs. W&B is switched off unless a test asks for it (WANDB_MODE=offline): each run costs seconds."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest
import torch

from unveil.logs import show_messages
from unveil.runtime import keep_freed_memory

FER_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013"


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Keep the tests' decoded-data cache away from the user's."""
    old = os.environ.get("UNVEIL_CACHE")
    os.environ["UNVEIL_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.setdefault("WANDB_MODE", "disabled")
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    keep_freed_memory()  # as the command line does
    show_messages()      # so does this: library calls in tests show their messages as the commands do
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


@pytest.fixture(scope="session")
def read_wandb():
    """Read an offline W&B run back: ``read_wandb(folder) -> (history rows, summary, {metric: step metric})``
    from the one ``offline-run-*/run-*.wandb`` under `folder` (records in LevelDB's log format: 32 KiB blocks,
    each record a 7-byte header of CRC, length and kind (1 whole, 2 first, 3 middle, 4 last), then its bytes)."""
    pytest.importorskip("wandb")
    from wandb.proto import wandb_internal_pb2 as pb

    def key(item) -> str:
        return item.key or "/".join(item.nested_key)

    def read(folder: Path):
        [path] = list(Path(folder).glob("wandb/offline-run-*/run-*.wandb"))
        data, pos, part, records = path.read_bytes(), 7, b"", []
        while pos + 7 <= len(data):
            left = 32768 - pos % 32768
            if left < 7:
                pos += left
                continue
            _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
            if kind == 0:
                pos += left
                continue
            part, pos = part + data[pos + 7:pos + 7 + length], pos + 7 + length
            if kind in (1, 4):
                records.append(part)
                part = b""
        history, summary, steps = [], {}, {}
        for raw in records:
            record = pb.Record()
            record.ParseFromString(raw)
            kind = record.WhichOneof("record_type")
            if kind == "history":   # an image is logged as its parts (``samples/_type``, ...): named by its key
                history.append({i.key or i.nested_key[0]: json.loads(i.value_json) for i in record.history.item})
            elif kind == "summary":
                summary.update({key(i): json.loads(i.value_json) for i in record.summary.update})
            elif kind == "metric":
                steps[record.metric.name or record.metric.glob_name] = record.metric.step_metric
        return history, summary, steps

    return read
