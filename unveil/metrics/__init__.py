"""The one metrics module: classification scores and image-reconstruction quality."""

from .classification import bootstrap_intervals, classification_report, confusion_matrix
from .image import ImageQuality, lpips_available, psnr, ssim

__all__ = ["bootstrap_intervals", "classification_report", "confusion_matrix",
           "ImageQuality", "lpips_available", "psnr", "ssim"]
