"""Data-parallel training with torchrun: two CPU processes on the gloo backend train the same config as
one process, each on its half of the faces; the loss falls, both ranks end with the same weights, and
the checkpoint has the single-process run's layout."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from unveil.checkpoint import load_checkpoint

ARGS = ["train-classifier", "--config", "configs/classifier_synthetic.yaml", "--device", "cpu",
        "--set", "train.epochs=3", "--set", "data.limit=800", "--set", "train.patience=0", "--set", "report_test=false"]


def run(command: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_two_gloo_processes_train_like_one(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "unveil.pipelines.cli", *ARGS, "--out", str(tmp_path / "two")], env)
    assert two.returncode == 0, two.stderr[-3000:]
    one = run([sys.executable, "-m", "unveil.pipelines.cli", *ARGS, "--out", str(tmp_path / "one")], env)
    assert one.returncode == 0, one.stderr[-3000:]

    history = json.loads((tmp_path / "two" / "history.json").read_text())
    losses = [r["train_loss"] for r in history]
    assert len(losses) == 3 and losses[-1] < losses[0] - 0.2, losses
    a, meta_a = load_checkpoint(tmp_path / "two" / "best")
    b, meta_b = load_checkpoint(tmp_path / "one" / "best")
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    assert meta_a["arch"] == meta_b["arch"] and meta_a["classes"] == meta_b["classes"]
    assert all(torch.isfinite(v).all() for v in a.values() if v.is_floating_point())
    # Rank 0 alone wrote the run folder; the ranks agreed on every epoch's validation.
    assert len(list((tmp_path / "two").glob("best.*"))) == 2
    assert two.stderr.count("[train-classifier] done") == 1


def test_a_face_store_round_trips_and_shards_by_rank(synthetic_faces, tmp_path):
    from unveil.data.store import open_store, write_store

    faces = synthetic_faces.select(torch.arange(700))
    write_store(faces, tmp_path / "store", shard_faces=128)
    assert len(list((tmp_path / "store").glob("train-*.u8"))) > 1  # several shards
    whole = open_store(tmp_path / "store")
    assert len(whole) == len(faces) and not whole.sharded
    for split in ("train", "val", "test"):
        a, b = faces.split(split), whole.split(split)
        key = lambda f: sorted(zip(f.ids, f.labels.tolist(), f.images.flatten(1).sum(1).tolist()))  # noqa: E731
        assert key(a) == key(b), split
    ranks = [open_store(tmp_path / "store", rank, 2) for rank in (0, 1)]
    train_ids = [set(r.split("train").ids) for r in ranks]
    assert not train_ids[0] & train_ids[1] and all(r.sharded for r in ranks)
    assert len(train_ids[0]) == len(train_ids[1]) == len(faces.split("train")) // 2
    assert ranks[0].split("val").ids == whole.split("val").ids  # val and test whole on every rank
    # Every block is a fair sample: the training faces were shuffled when the store was written.
    assert len(set(ranks[0].split("train").labels.tolist())) == 7
