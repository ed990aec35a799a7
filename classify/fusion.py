"""The one reading of a face whose lower half is hidden: a calibrated late fusion of two readings.

The upper-half reader reads the occluded face; the judge reads the reconstruction. Each is right where the
other is not (the reader never sees an invented mouth, the judge reads a face shaped as it was trained), so
the one reading pools their log-probabilities with weights (and optionally per-class offsets) fitted
on validation faces (a log-linear pool, i.e. a multinomial logistic regression on the two log-probability
vectors, whose weights also set its temperature):

    log q = w_reader * log p_reader + w_judge * log p_judge + b,    q = softmax(log q)

With `w_judge = 0, b = 0` it is the reader itself, so the fit's negative log-likelihood on the faces it
was fitted on is never above the better input's (beyond the fit's tolerance); an input that carries
nothing gets a weight near 0.

    fusion = fit_fusion(reader_probs, judge_probs, labels)       # on validation faces only
    probs = fusion(reader_probs, judge_probs)
    save_fusion("checkpoints/fusion", fusion, {"inputs": ..., "fitted_on": ...})
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from unveil.checkpoint import load_checkpoint, save_checkpoint
from unveil.classes import CLASSES, NUM_CLASSES
from unveil.errors import UnveilError

INPUTS = ("reader", "judge")   # the reader on the occluded face, the judge on the reconstruction
RECORDED = ("reader", "judge", "inpainter")   # the models a fusion is fitted for, named in its sidecar by SHA-256
EPS = 1e-6                     # probabilities are clamped here before the log: a hard 0 would be -inf


class Fusion(nn.Module):
    """A log-linear pool of the reader's and the judge's probabilities.

    Shape:
        reader, judge: probabilities [N, C] -> fused probabilities [N, C].

    Example:
        >>> fusion = Fusion()
        >>> p = torch.full((2, 7), 1 / 7)
        >>> fusion(p, p).shape
        torch.Size([2, 7])
    """

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.weights = nn.Parameter(torch.full((len(INPUTS),), 0.5))
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def logits(self, reader: torch.Tensor, judge: torch.Tensor) -> torch.Tensor:
        stacked = torch.stack([p.float().clamp_min(EPS).log() for p in (reader, judge)])   # [2, N, C]
        return torch.einsum("k,knc->nc", self.weights.to(stacked.device), stacked) + self.bias.to(stacked.device)

    def forward(self, reader: torch.Tensor, judge: torch.Tensor) -> torch.Tensor:
        return self.logits(reader, judge).softmax(1)


def fit_fusion(reader: torch.Tensor, judge: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None,
               offsets: bool = False, l2: float = 1e-3, steps: int = 200) -> Fusion:
    """The fusion that minimises the (`weight`ed, per face) negative log-likelihood of `labels`, by L-BFGS
    on the CPU. Fit it on validation faces only. The per-class `offsets` are left at 0 unless asked for:
    fitted, they learn the fitting set's class frequencies (FER2013's happy-heavy ones), which a balanced
    photo set does not share; asked for, a small L2 pulls them towards 0.

    Shape:
        reader, judge: probabilities [N, C]; labels: int [N]; weight: [N] or None -> Fusion.
    """
    if not (reader.shape == judge.shape and reader.shape[0] == labels.shape[0] and reader.ndim == 2):
        raise UnveilError(f"fusion: readings {tuple(reader.shape)} and {tuple(judge.shape)} for "
                          f"{tuple(labels.shape)} labels do not match")
    if len(labels) < 2 * reader.shape[1]:
        raise UnveilError(f"fusion: {len(labels)} faces are too few to fit {reader.shape[1] + 2} numbers")
    fusion = Fusion(reader.shape[1])
    reader, judge, labels = reader.detach().cpu().float(), judge.detach().cpu().float(), labels.cpu().long()
    weight = torch.ones(len(labels)) if weight is None else weight.detach().cpu().float()
    fitted = [fusion.weights, fusion.bias] if offsets else [fusion.weights]
    optim = torch.optim.LBFGS(fitted, lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optim.zero_grad()
        nll = F.cross_entropy(fusion.logits(reader, judge), labels, reduction="none")
        loss = (weight * nll).sum() / weight.sum() + l2 * fusion.bias.pow(2).sum()
        loss.backward()
        return loss

    optim.step(closure)
    return fusion.eval().requires_grad_(False)


def save_fusion(path: str | Path, fusion: Fusion, meta: dict) -> Path:
    """The one checkpoint format: the two weights and the offsets, and a sidecar naming the inputs."""
    if not set(RECORDED) <= set(meta.get("inputs", {})):
        raise UnveilError(f"a fusion's sidecar must name the models it was fitted for: {', '.join(RECORDED)}")
    return save_checkpoint(path, {"weights": fusion.weights.detach(), "bias": fusion.bias.detach()},
                           {"kind": "fusion", "classes": list(CLASSES), **meta})


def load_fusion(path: str | Path) -> tuple[Fusion, dict]:
    tensors, meta = load_checkpoint(path, "cpu", kind="fusion")
    if set(tensors) != {"weights", "bias"} or tensors["weights"].shape != (len(INPUTS),) or \
            tensors["bias"].shape != (len(meta.get("classes", ())),):
        raise UnveilError(f"{path}: not a fusion's tensors (weights [2], bias [classes])")
    fusion = Fusion(len(meta["classes"]))
    fusion.load_state_dict({k: v.float() for k, v in tensors.items()})
    return fusion.eval().requires_grad_(False), meta


# --------------------------------------------------------------------------- the one reading of a face


def input_record(path: str | Path) -> dict:
    """What names a fusion's input: the checkpoint's name and its weights' SHA-256."""
    from unveil.checkpoint import weights_digest

    return {"name": Path(path).name, "weights_sha256": weights_digest(path)}


class OneReading:
    """One answer per face: on a face with a hole, the fusion of the reader (occluded face) and the judge
    (reconstruction); on a face without one, the judge on the face itself.

    The fusion is used as fitted only for the models it was fitted on (their SHA-256 in its sidecar);
    for other models it is the plain log-linear pool with equal weights, and `how` says so.
    """

    def __init__(self, fusion: Fusion, meta: dict | None, used: dict[str, dict]):
        fitted = (meta or {}).get("inputs", {})
        mismatched = [k for k in RECORDED
                      if fitted.get(k, {}).get("weights_sha256") != used.get(k, {}).get("weights_sha256")]
        self.calibrated = meta is not None and not mismatched
        self.fusion = (fusion if self.calibrated else Fusion(fusion.bias.shape[0])).eval().requires_grad_(False)
        if self.calibrated:
            self.how = (f"the reader and the judge on the reconstruction, pooled by {meta.get('name', 'a fusion')} "
                        f"(fitted on val faces)")
        else:
            why = "no fusion given" if meta is None else f"fitted for another {', '.join(mismatched)}"
            self.how = f"equal-weight pool of the reader and the judge on the reconstruction ({why})"
            self.fusion.weights.data.fill_(0.5)

    @classmethod
    def open(cls, spec: str | None, used: dict[str, dict], checkpoints: str | Path | None = None) -> "OneReading":
        """`spec`: a fusion checkpoint (path or shipped name) or None; `used`: input_record of each model."""
        if spec is None:
            return cls(Fusion(), None, used)
        from unveil.shipped import resolve_checkpoint

        fusion, meta = load_fusion(resolve_checkpoint(spec, checkpoints))
        return cls(fusion, meta, used)

    def __call__(self, reader: torch.Tensor, judge_reconstructed: torch.Tensor, judge_untouched: torch.Tensor,
                 hidden: torch.Tensor) -> torch.Tensor:
        """Probabilities [N, C]; `hidden` bool [N]: the face has a hole (else the judge reads it whole)."""
        with torch.no_grad():
            fused = self.fusion(reader, judge_reconstructed).to(judge_untouched.device)
        return torch.where(hidden.view(-1, 1).to(fused.device), fused, judge_untouched.float())
