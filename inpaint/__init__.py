"""Inpainting stage: reconstruct the hidden lower face so that the shared classifier can read it.

    from unveil.inpaint import create_generator, load_inpainter, create_inpainter, stitch

    G = create_generator("unet")                        # unet | ra_unet | resnet_cgan
    image = G(occluded, hole)                           # [N, 1, 48, 48] in [0, 1]
    face = stitch(image, occluded, hole)                # visible pixels kept exactly

    inpainter = load_inpainter("runs/inpaint_synthetic_unet/best", "cpu")
    faces = inpainter.reconstruct(occluded, hole)       # conditioning and stitching inside
    baseline = create_inpainter("telea")                # telea | navier_stokes | mean_face (.fit(faces))

Training: `inpaint.train.train_inpainter(config, out_dir)` or `unveil train-inpainter --config ...`.
"""

from .classical import BASELINES, create_baseline
from .discriminators import DISCRIMINATORS, create_discriminator
from .generators import GENERATORS, create_generator
from .inpainter import (Inpainter, create_inpainter, inpainter_record, load_inpainter, open_inpainter,
                        save_inpainter)
from .stitch import stitch

__all__ = ["BASELINES", "DISCRIMINATORS", "GENERATORS", "Inpainter", "create_baseline", "create_discriminator",
           "create_generator", "create_inpainter", "inpainter_record", "load_inpainter", "open_inpainter",
           "save_inpainter", "stitch"]
