"""Reconstruction quality on the hole and on the whole image: L1, PSNR, SSIM, LPIPS.

Images are float [N, 1, H, W] in [0, 1]; a hole is a 0/1 mask of the same shape (1 = hidden).
SSIM uses a Gaussian window (11, sigma 1.5) with 'valid' padding, which equals scikit-image's
`structural_similarity(gaussian_weights=True, use_sample_covariance=False, data_range=1)` (tested).
The same SSIM is differentiable and serves as a training loss (`unveil.inpaint.losses`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

WINDOW = 11
SIGMA = 1.5
_LPIPS_BACKBONE = "alexnet-owt-7be5be79.pth"  # torchvision's AlexNet weights, as LPIPS(net="alex") uses


def _region_mean(values: torch.Tensor, region: torch.Tensor | None) -> torch.Tensor:
    """Per-image mean of `values` [N, 1, H, W] over `region` (everything when None)."""
    if region is None:
        return values.flatten(1).mean(1)
    region = region.to(values.dtype)
    return (values * region).flatten(1).sum(1) / region.flatten(1).sum(1).clamp_min(1)


def l1(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error per image [N] over `region`."""
    return _region_mean((pred.float() - target.float()).abs(), region)


def psnr(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor | None = None,
         max_val: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image [N] over `region`.

    Example:
        >>> x = torch.zeros(1, 1, 4, 4); psnr(x + 0.1, x).round()
        tensor([20.])
    """
    mse = _region_mean((pred.float() - target.float()) ** 2, region)
    return 10 * torch.log10(max_val ** 2 / mse.clamp_min(1e-10))


def _gaussian(window: int, sigma: float, device) -> torch.Tensor:
    x = torch.arange(window, device=device, dtype=torch.float32) - (window - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def ssim_map(pred: torch.Tensor, target: torch.Tensor, window: int = WINDOW, sigma: float = SIGMA) -> torch.Tensor:
    """Local SSIM (data range 1) with a Gaussian window and 'valid' padding; differentiable.

    The five local moments are blurred in one batched, separable pass (2 x 11 taps instead of 121: a
    2-D window made this half of a small generator's training step on the CPU).

    Shape:
        pred, target: [N, 1, H, W] with H, W >= window -> [N, 1, H - window + 1, W - window + 1].
    """
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    pred, target = pred.float(), target.float()
    g = _gaussian(window, sigma, pred.device)
    moments = torch.cat([pred, target, pred * pred, target * target, pred * target], 1)
    blurred = F.conv2d(F.conv2d(moments, g.view(1, 1, 1, -1).expand(5, 1, 1, window), groups=5),
                       g.view(1, 1, -1, 1).expand(5, 1, window, 1), groups=5)
    mu_x, mu_y, xx, yy, xy = blurred.split(1, 1)
    sxx, syy, sxy = xx - mu_x ** 2, yy - mu_y ** 2, xy - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))


def ssim(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor | None = None,
         window: int = WINDOW) -> torch.Tensor:
    """Mean SSIM per image [N]; with `region`, over the windows centred inside it.

    Shape:
        pred, target, region: [N, 1, H, W] with H, W >= window.

    Example:
        >>> x = torch.rand(2, 1, 48, 48); ssim(x, x)
        tensor([1., 1.])
    """
    smap = ssim_map(pred, target, window)
    if region is not None:
        crop = window // 2
        region = region[..., crop:-crop, crop:-crop]
    return _region_mean(smap, region)


def lpips_backbone_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / _LPIPS_BACKBONE


def lpips_available() -> tuple[bool, str]:
    """Whether LPIPS can run offline, and if not, what is missing."""
    try:
        import lpips  # noqa: F401
    except ImportError:
        return False, "the lpips package is not installed (pip install lpips)"
    path = lpips_backbone_path()
    if not path.exists():
        return False, (f"LPIPS needs torchvision's AlexNet weights at {path}, which are not in the local "
                       f"torch cache (Unveil never downloads at run time); copy {_LPIPS_BACKBONE} there")
    return True, ""


class LPIPS(torch.nn.Module):
    """LPIPS (AlexNet) built offline from the local torch cache; raises with what is missing."""

    def __init__(self):
        super().__init__()
        ok, why = lpips_available()
        if not ok:
            raise RuntimeError(why)
        import lpips

        self.net = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
        state = torch.load(lpips_backbone_path(), map_location="cpu", weights_only=True)
        features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        self.net.net.load_state_dict(_alexnet_slices(features))
        self.net.eval().requires_grad_(False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """LPIPS distance per image [N]; grayscale in [0, 1] is repeated to RGB in [-1, 1]."""
        to_rgb = lambda x: (x.float() * 2 - 1).expand(-1, 3, -1, -1)  # noqa: E731
        return self.net(to_rgb(pred), to_rgb(target)).flatten(1).mean(1)


def _alexnet_slices(features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename torchvision's `features.i` weights into lpips' five `sliceK.i` blocks."""
    bounds = [(1, 0, 2), (2, 2, 5), (3, 5, 8), (4, 8, 10), (5, 10, 12)]
    out = {}
    for key, value in features.items():
        index = int(key.split(".")[0])
        for slice_no, lo, hi in bounds:
            if lo <= index < hi:
                out[f"slice{slice_no}.{key}"] = value
    return out


class ImageQuality:
    """Accumulates L1, PSNR and SSIM on the hole and on the whole image (and LPIPS when it can run
    offline) over batches, on the batches' device; `compute()` reads them once at the end.

    Keys: `l1_hole`, `psnr_hole`, `ssim_hole`, `l1_image`, `psnr_image`, `ssim_image`, `lpips` — each the
    mean over images of the per-image value.
    """

    def __init__(self, use_lpips: bool = True, device: str | torch.device = "cpu"):
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        ok, self.lpips_missing = lpips_available() if use_lpips else (False, "LPIPS switched off")
        self.lpips = LPIPS().to(device) if ok else None

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> None:
        pred, target, hole = pred.float(), target.float(), hole.float()
        values = {
            "l1_hole": l1(pred, target, hole), "psnr_hole": psnr(pred, target, hole),
            "ssim_hole": ssim(pred, target, hole),
            "l1_image": l1(pred, target), "psnr_image": psnr(pred, target), "ssim_image": ssim(pred, target),
        }
        if self.lpips is not None:
            values["lpips"] = self.lpips(pred, target)
        for key, v in values.items():
            self.sums[key] = self.sums.get(key, 0) + v.double().sum()
        self.count += pred.shape[0]

    def compute(self) -> dict:
        out = {key: float(total) / max(self.count, 1) for key, total in self.sums.items()}
        if self.lpips is None:
            out["lpips"] = None
            out["lpips_missing"] = self.lpips_missing
        return out


def image_quality(pred: torch.Tensor, target: torch.Tensor, hole: torch.Tensor, use_lpips: bool = True,
                  batch_size: int = 1024) -> dict:
    """`ImageQuality` over a whole set, in batches (LPIPS holds AlexNet activations per face)."""
    quality = ImageQuality(use_lpips, pred.device)
    for i in range(0, pred.shape[0], batch_size):
        quality.update(pred[i:i + batch_size], target[i:i + batch_size], hole[i:i + batch_size])
    return quality.compute()
