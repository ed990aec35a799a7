"""Classification metrics on label tensors, batched so that bootstrap intervals cost milliseconds.

Accuracy, macro-F1, per-class precision/recall/F1, the confusion matrix and one-vs-rest ROC-AUC,
checked against scikit-learn in the tests.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..classes import CLASSES


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, num_classes: int = len(CLASSES)) -> torch.Tensor:
    """Counts [true, predicted] as int64 [C, C].

    Shape:
        labels, preds: [N] or [B, N] (a batch of resamples gives [B, C, C]).
    """
    flat = labels.long() * num_classes + preds.long()
    if flat.dim() == 1:
        return torch.bincount(flat, minlength=num_classes ** 2).view(num_classes, num_classes)
    batch = flat.shape[0]
    offset = torch.arange(batch, device=flat.device).unsqueeze(1) * num_classes ** 2
    counts = torch.bincount((flat + offset).flatten(), minlength=batch * num_classes ** 2)
    return counts.view(batch, num_classes, num_classes)


def _scores(conf: torch.Tensor) -> dict[str, torch.Tensor]:
    """Accuracy, per-class precision/recall/F1 and macro-F1 from confusion matrices [..., C, C].

    Classes absent from both labels and predictions are left out of the macro average (as sklearn
    does with `labels=None`); a zero denominator gives 0, sklearn's `zero_division=0`.
    """
    conf = conf.double()
    tp = conf.diagonal(dim1=-2, dim2=-1)
    support, predicted = conf.sum(-1), conf.sum(-2)
    precision = torch.where(predicted > 0, tp / predicted.clamp_min(1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp_min(1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(1e-12), torch.zeros_like(tp))
    present = (support + predicted) > 0
    macro_f1 = (f1 * present).sum(-1) / present.sum(-1).clamp_min(1)
    accuracy = tp.sum(-1) / conf.sum((-2, -1)).clamp_min(1)
    return {"accuracy": accuracy, "macro_f1": macro_f1, "precision": precision, "recall": recall,
            "f1": f1, "support": support}


def roc_auc_ovr(labels: np.ndarray, probs: np.ndarray, classes: Sequence[str] | None = None) -> dict[str, float | None]:
    """One-vs-rest ROC-AUC per class (Mann-Whitney rank form, ties averaged); None if undefined."""
    from scipy.stats import rankdata

    out = {}
    for k, name in enumerate(class_names(classes, probs.shape[1])):
        pos = labels == k
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if n_pos == 0 or n_neg == 0:
            out[name] = None
            continue
        ranks = rankdata(probs[:, k])
        out[name] = float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return out


def bootstrap_intervals(labels: torch.Tensor, preds: torch.Tensor, n_boot: int = 1000,
                        seed: int = 0, level: float = 0.95, num_classes: int = len(CLASSES)) -> dict[str, list[float]]:
    """Percentile bootstrap intervals for accuracy and macro-F1 (resampling faces with replacement)."""
    gen = torch.Generator().manual_seed(seed)
    n = labels.shape[0]
    labels, preds = labels.cpu(), preds.cpu()
    out = {"accuracy": [], "macro_f1": []}
    for start in range(0, n_boot, 250):  # chunks keep memory flat for large test sets
        b = min(250, n_boot - start)
        idx = torch.randint(0, n, (b, n), generator=gen)
        scores = _scores(confusion_matrix(labels[idx], preds[idx], num_classes))
        for key in out:
            out[key].append(scores[key])
    alpha = (1 - level) / 2
    return {key: [float(torch.cat(v).quantile(alpha)), float(torch.cat(v).quantile(1 - alpha))]
            for key, v in out.items()}


def class_names(classes: Sequence[str] | None, num_classes: int) -> tuple[str, ...]:
    """The names of the C columns of a probability matrix: `classes`, or the first canonical ones."""
    names = tuple(classes) if classes is not None else CLASSES[:num_classes]
    if len(names) != num_classes:
        raise ValueError(f"{num_classes} columns of probabilities but {len(names)} class names {list(names)}")
    return names


def classification_report(labels: torch.Tensor, probs: torch.Tensor, n_boot: int = 1000,
                          seed: int = 0, classes: Sequence[str] | None = None) -> dict:
    """Every classification metric Unveil reports, as a JSON-able dict.

    `classes` names the columns of `probs` (default: the canonical classes); the report lists them
    under `classes`, so a 3-class number (a valence view) cannot pass for a 7-class one.

    Shape:
        labels: int [N] (indices into `classes`); probs: float [N, C] (rows sum to 1).
    """
    labels, probs = labels.cpu().long(), probs.detach().cpu().float()
    names = class_names(classes, probs.shape[1])
    preds = probs.argmax(1)
    conf = confusion_matrix(labels, preds, probs.shape[1])
    s = _scores(conf)
    per_class = {name: {"precision": float(s["precision"][k]), "recall": float(s["recall"][k]),
                        "f1": float(s["f1"][k]), "support": int(s["support"][k])}
                 for k, name in enumerate(names)}
    auc = roc_auc_ovr(labels.numpy(), probs.numpy(), names)
    defined = [v for v in auc.values() if v is not None]
    report = {
        "classes": list(names),
        "n": int(labels.shape[0]),
        "accuracy": float(s["accuracy"]),
        "macro_f1": float(s["macro_f1"]),
        "per_class": per_class,
        "confusion": conf.tolist(),
        "roc_auc": auc,
        "macro_roc_auc": float(np.mean(defined)) if defined else None,
    }
    if n_boot > 0:
        report["ci95"] = bootstrap_intervals(labels, preds, n_boot=n_boot, seed=seed, num_classes=len(names))
    return report
