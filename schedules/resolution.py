"""σ_max that grows with the canvas (pure Python, never imports comfy).

NovelAI Diffusion V3 (arXiv 2409.15997): "when the canvas side doubles, σ_max should
double", because a larger canvas carries more redundant low-frequency signal and needs more
noise to reach the same SNR. The side of a non-square canvas is √(width·height).
"""
from __future__ import annotations

import math

#: The resolution each model family was trained at (pixels per side).
BASE_SIDE_BY_FAMILY = {"SD1": 512, "SD2": 768, "SDXL": 1024}
#: SD-family VAEs turn 8×8 pixels into one latent cell.
LATENT_PIXELS_PER_CELL = 8


def canvas_side(width: int | float, height: int | float) -> float:
    """Geometric-mean side √(w·h) of a canvas, in the same unit as width and height."""
    if not (width > 0 and height > 0):
        raise ValueError(f"width and height must be positive, got {width}×{height}")
    return math.sqrt(float(width) * float(height))


def resolution_factor(width: int | float, height: int | float, base_side: int | float) -> float:
    """side / base side: the factor NovelAI's rule multiplies σ_max by."""
    if not base_side > 0:
        raise ValueError(f"base_side must be positive, got {base_side}")
    return canvas_side(width, height) / float(base_side)


def scaled_sigma_max(sigma_max: float, width: int | float, height: int | float, base_side: int | float) -> float:
    """σ_max × √(w·h) / base side (NovelAI V3's resolution rule)."""
    return float(sigma_max) * resolution_factor(width, height, base_side)


def latent_pixel_size(latent: dict) -> tuple[int, int]:
    """(width, height) in pixels of a LATENT dict's samples (last two dims are height, width)."""
    samples = latent["samples"]
    return samples.shape[-1] * LATENT_PIXELS_PER_CELL, samples.shape[-2] * LATENT_PIXELS_PER_CELL
