"""GS Bench: reproducible 3D Gaussian Splatting pruning and compression benchmark."""

__version__ = "0.1.0"
