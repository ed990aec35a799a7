"""Pipelines: the only place that wires data, inpainting and classification together, and the CLI."""
