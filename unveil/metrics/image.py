"""Reconstruction quality on the hole and on the whole image: L1, PSNR, SSIM (kornia), LPIPS.

Images are float [N, 1, H, W] in [0, 1]; a hole is a 0/1 mask of the same shape (1 = hidden).
SSIM uses kornia's Gaussian window (11, sigma 1.5) with 'valid' padding, which equals
scikit-image's `structural_similarity(gaussian_weights=True, use_sample_covariance=False)`.
"""

from __future__ import annotations

from pathlib import Path

import torch

WINDOW = 11
_LPIPS_BACKBONE = "alexnet-owt-7be5be79.pth"  # torchvision's AlexNet weights, as LPIPS(net="alex") uses


def _region_mean(values: torch.Tensor, region: torch.Tensor | None) -> torch.Tensor:
    """Per-image mean of `values` [N, 1, H, W] over `region` (everything when None)."""
    if region is None:
        return values.flatten(1).mean(1)
    region = region.to(values.dtype)
    return (values * region).flatten(1).sum(1) / region.flatten(1).sum(1).clamp_min(1)


def l1(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error per image [N] over `region`."""
    return _region_mean((pred - target).abs(), region)


def psnr(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor | None = None,
         max_val: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image [N] over `region`.

    Example:
        >>> x = torch.zeros(1, 1, 4, 4); psnr(x + 0.1, x).round()
        tensor([20.])
    """
    mse = _region_mean((pred.float() - target.float()) ** 2, region)
    return 10 * torch.log10(max_val ** 2 / mse.clamp_min(1e-10))


def ssim(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """Mean SSIM per image [N]; with `region`, over the windows centred inside it.

    Shape:
        pred, target, region: [N, 1, H, W] with H, W >= 11.
    """
    from kornia.metrics import ssim as kornia_ssim

    smap = kornia_ssim(pred.float(), target.float(), WINDOW, max_val=1.0, padding="valid")
    if region is not None:
        crop = WINDOW // 2
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
    """Accumulates hole and whole-image L1/PSNR/SSIM (and LPIPS when available) over batches."""

    def __init__(self, use_lpips: bool = True, device: str | torch.device = "cpu"):
        self.sums: dict[str, float] = {}
        self.count = 0
        ok, self.lpips_missing = lpips_available() if use_lpips else (False, "LPIPS switched off")
        self.lpips = LPIPS().to(device) if ok else None

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> None:
        values = {
            "l1_hole": l1(pred, target, hole), "l1": l1(pred, target),
            "psnr_hole": psnr(pred, target, hole), "psnr": psnr(pred, target),
            "ssim_hole": ssim(pred, target, hole), "ssim": ssim(pred, target),
        }
        if self.lpips is not None:
            values["lpips"] = self.lpips(pred, target)
        for key, v in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(v.float().sum())
        self.count += pred.shape[0]

    def compute(self) -> dict:
        out = {key: total / max(self.count, 1) for key, total in self.sums.items()}
        if self.lpips is None:
            out["lpips"] = None
            out["lpips_missing"] = self.lpips_missing
        return out
