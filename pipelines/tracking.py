"""Weights & Biases logging: offline by default (no login, no network), online once the user set it up.

Everything logged here is also written locally (HTML, PNG, JSON), so W&B is never required.
"""

from __future__ import annotations

import logging
import netrc
import os
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def wandb_mode() -> str:
    """WANDB_MODE if set; online when an API key or a netrc login exists; otherwise offline."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        if netrc.netrc().authenticators("api.wandb.ai"):
            return "online"
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        pass
    return "offline"


def start_run(out_dir: str | Path, name: str, job_type: str, config: dict | None = None):
    """A W&B run writing under `out_dir/wandb`, or None (with a note) when wandb is not installed."""
    try:
        import wandb
    except ImportError:
        log.info("note: wandb is not installed; skipping W&B logging (local files are written anyway)")
        return None
    os.environ.setdefault("WANDB_SILENT", "true")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return wandb.init(project=os.environ.get("WANDB_PROJECT", "unveil"), name=name, job_type=job_type,
                      dir=str(out_dir), mode=wandb_mode(), config=config or {}, reinit="finish_previous")


def log_gallery(run, rows, conditions: list[str], report: dict, chart_path: str | Path | None = None) -> None:
    """The gallery as a W&B table with the HTML page's columns, plus the headline metrics."""
    import wandb

    columns = ["face", "true class"]
    for c in conditions:
        columns += [c, f"{c} prediction", f"{c} confidence", f"{c} saliency"]
    table = wandb.Table(columns=columns)
    for row in rows:
        cells = [row.face_id, row.label]
        for c in conditions:
            cells += [wandb.Image(row.images[c]), row.predicted[c], round(row.confidence[c], 4),
                      wandb.Image(row.saliency[c])]
        table.add_data(*cells)
    logged = {"gallery": table}
    for name, c in report["conditions"].items():
        logged[f"{name}/accuracy"] = c["accuracy"]
        logged[f"{name}/macro_f1"] = c["macro_f1"]
        if c.get("psnr_hole") is not None:
            logged[f"{name}/psnr_hole"], logged[f"{name}/ssim_hole"] = c["psnr_hole"], c["ssim_hole"]
    if chart_path:
        logged["accuracy_chart"] = wandb.Image(str(chart_path))
    run.log(logged)


class LiveTraining:
    """A training stage in W&B while it trains: called at the end of each epoch (a trainer's `on_epoch_end`),
    it logs the epoch's numbers as ``STAGE/name`` against the stage's own epoch axis (``define_metric``, so
    several stages sit side by side in one run) and the epoch's sample grid as an image; `summarize` puts
    the best checkpoint's metrics in ``run.summary``.

    `run` is a W&B run to share (the quickstart's), or None to start one in the run folder at the first
    epoch (the folder exists by then); `enabled=False` makes every call a no-op.

        live = LiveTraining("train-inpainter", out, select="psnr_hole", config=to_dict(cfg))
        train_inpainter(cfg, out, on_epoch_end=live); live.summarize(summary); live.finish()
    """

    def __init__(self, stage: str, out_dir: str | Path, select: str, minimize: bool = False,
                 config: dict | None = None, run=None, enabled: bool = True):
        self.stage, self.out, self.select, self.minimize = stage, Path(out_dir), select, minimize
        self.config, self.run, self.enabled, self.owned = config, run, enabled, run is None
        self._defined = False

    def __call__(self, epoch: int, record: dict) -> None:
        if not self._ready():
            return
        import wandb

        logged = {f"{self.stage}/{k}": v for k, v in record.items() if _number(v)}
        logged[f"{self.stage}/epoch"] = epoch + 1
        sample = self.out / "samples" / f"epoch_{epoch + 1:03d}.png"
        if sample.exists():
            logged[f"{self.stage}/samples"] = wandb.Image(str(sample), caption=f"{self.stage} epoch {epoch + 1}")
        self.run.log(logged)

    def summarize(self, summary: dict) -> None:
        """The run's summary (metrics.json: the best epoch and its val and test metrics) in `run.summary`."""
        if self._ready():
            self.run.summary.update({f"{self.stage}/best/{k}": v for k, v in _flat(summary).items()})

    def finish(self) -> None:
        if self.owned and self.run is not None:
            self.run.finish()

    def _ready(self) -> bool:
        if not self.enabled:
            return False
        if self.run is None:
            self.run = start_run(self.out, name=self.out.name, job_type=self.stage, config=self.config)
            if self.run is None:   # wandb is not installed
                self.enabled = False
                return False
        if not self._defined:
            self.run.define_metric(f"{self.stage}/epoch")
            self.run.define_metric(f"{self.stage}/*", step_metric=f"{self.stage}/epoch")
            self.run.define_metric(f"{self.stage}/val_{self.select}", step_metric=f"{self.stage}/epoch",
                                   summary="min" if self.minimize else "max")
            self._defined = True
        return True


@contextmanager
def live_training(stage: str, out_dir: str | Path, select: str, minimize: bool = False, config: dict | None = None,
                  enabled: bool = True):
    """A `LiveTraining` of its own W&B run, finished however the training ends."""
    live = LiveTraining(stage, out_dir, select, minimize, config, enabled=enabled)
    try:
        yield live
    finally:
        live.finish()


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _flat(d: dict, prefix: str = "") -> dict:
    """Nested numbers as one level of ``a/b`` keys."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}/"))
        elif _number(v):
            out[f"{prefix}{k}"] = v
    return out
