"""Face detectors by name. Each takes an RGB photo and returns ``Face`` results (box, score, five
landmarks), best score first, so alignment and everything after it never depend on which one ran.

    detector = create_detector()                    # RetinaFace, the default
    detector = create_detector("mtcnn", score=0.9)  # the cascade Unveil used first

- ``retinaface`` (default): RetinaFace-MobileNet0.25, one pass over the photo framed in a gray border.
  It finds masked faces that MTCNN misses (docs/photos.md: measured on real masked faces).
- ``mtcnn``: the three-stage cascade; kept for comparison and for work that measured the FER2013
  frame with it (``scripts/measure_fer_frame.py``).
"""

from __future__ import annotations

from unveil.registry import Registry
from .mtcnn import MTCNN
from .retinaface import RetinaFace

__all__ = ["DETECTORS", "DEFAULT_DETECTOR", "create_detector"]

DETECTORS: Registry = Registry("face detector")
DEFAULT_DETECTOR = "retinaface"
DETECTORS.register("retinaface")(RetinaFace)
DETECTORS.register("mtcnn")(MTCNN)


def create_detector(name: str = DEFAULT_DETECTOR, **kwargs):
    """The detector ``name`` built with ``kwargs`` (its own options: see ``RetinaFace`` and ``MTCNN``)."""
    return DETECTORS.create(name, **kwargs)
