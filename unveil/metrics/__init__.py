"""The one metrics module: classification scores and image-reconstruction quality."""

from .classification import bootstrap_intervals, classification_report, confusion_matrix
from .image import ImageQuality, image_quality, lpips_available, psnr, ssim, ssim_map

__all__ = ["bootstrap_intervals", "classification_report", "confusion_matrix",
           "ImageQuality", "image_quality", "lpips_available", "psnr", "ssim", "ssim_map"]
