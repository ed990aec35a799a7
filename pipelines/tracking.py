"""Weights & Biases logging: offline by default (no login, no network), online once the user set it up.

Everything logged here is also written locally (HTML, PNG, JSON), so W&B is never required.
"""

from __future__ import annotations

import netrc
import os
import sys
from pathlib import Path



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
        print("note: wandb is not installed; skipping W&B logging (local files are written anyway)",
              file=sys.stderr)
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


def log_training(run, history: list[dict], samples: list[str | Path] = ()) -> None:
    """A training run's per-epoch curves and its sample grids."""
    import wandb

    for entry in history:
        run.log({k: v for k, v in entry.items() if isinstance(v, (int, float))})
    for path in samples:
        run.log({"samples": wandb.Image(str(path), caption=Path(path).stem)})
