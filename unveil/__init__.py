"""Unveil core: what both stages share — classes, data sources, occlusion, metrics, checkpoints.

`inpaint` and `classify` import this package; it imports neither of them.
"""

__version__ = "0.1.0"
