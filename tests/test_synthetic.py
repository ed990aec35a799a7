"""Tests for the procedural synthetic face set (unveil.data.synthetic)."""

import pytest
import torch
import torch.nn.functional as F

from unveil.data.synthetic import CLASSES, synthesize

HALF = 24  # rows 24..47 are the hidden lower half


def test_shape_dtype_and_range():
    images, labels = synthesize(70, seed=0)
    assert images.shape == (70, 48, 48) and images.dtype == torch.uint8
    assert labels.shape == (70,) and labels.dtype == torch.int64
    # A good part of the 0..255 range is used, not a washed-out band.
    lo, hi = torch.quantile(images.float(), torch.tensor([0.01, 0.99]))
    assert lo < 50 and hi > 200


def test_labels_are_a_balanced_permutation():
    _, labels = synthesize(700, seed=3)
    assert torch.bincount(labels, minlength=len(CLASSES)).tolist() == [100] * 7
    _, few = synthesize(10, seed=3)
    assert sorted(few.tolist()) == sorted(i % 7 for i in range(10))


def test_deterministic_by_seed():
    a, la = synthesize(50, seed=7)
    b, lb = synthesize(50, seed=7)
    assert torch.equal(a, b) and torch.equal(la, lb)


def test_seeds_differ():
    a, _ = synthesize(50, seed=0)
    b, _ = synthesize(50, seed=1)
    assert (a.float() - b.float()).abs().mean() > 10


def test_zero_faces():
    images, labels = synthesize(0)
    assert images.shape == (0, 48, 48) and labels.shape == (0,)


def _features(images: torch.Tensor, part: str) -> torch.Tensor:
    """Pixels of one part (the other rows zeroed), 2x average-pooled to blunt the pose jitter."""
    x = images.float() / 255
    if part == "upper":
        x[:, HALF:] = 0
    elif part == "lower":
        x[:, :HALF] = 0
    return F.avg_pool2d(x[:, None], 2).flatten(1)


def _linear_accuracy(train, test, part: str) -> float:
    """Held-out accuracy of an L2-regularised softmax regression fitted with L-BFGS."""
    (x_train, y_train), (x_test, y_test) = train, test
    a, b = _features(x_train, part), _features(x_test, part)
    mean, std = a.mean(0), a.std(0) + 1e-3
    a, b = (a - mean) / std, (b - mean) / std
    weight = torch.zeros(a.shape[1], len(CLASSES), requires_grad=True)
    bias = torch.zeros(len(CLASSES), requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(a @ weight + bias, y_train) + 1e-2 * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return ((b @ weight + bias).argmax(1) == y_test).float().mean().item()


@pytest.fixture(scope="module")
def accuracies():
    train, test = synthesize(2500, seed=11), synthesize(1000, seed=12)
    return {part: _linear_accuracy(train, test, part) for part in ("full", "upper", "lower")}


@pytest.mark.parametrize("part", ["upper", "lower"])
def test_each_half_carries_class_information(accuracies, part):
    assert accuracies[part] > 0.40, accuracies  # chance is 1/7 ~ 0.14


def test_full_face_beats_upper_half(accuracies):
    assert accuracies["full"] > accuracies["upper"] + 0.05, accuracies
