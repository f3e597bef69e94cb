"""σ_max that grows with the canvas (pure Python, never imports comfy).

NovelAI Diffusion V3 (arXiv 2409.15997): "when the canvas side doubles, σ_max should
double", because a larger canvas carries more redundant low-frequency signal and needs more
noise to reach the same SNR. The side of a non-square canvas is √(width·height).
"""
from __future__ import annotations

import math

#: The resolution each model family was trained at (pixels per side).
BASE_SIDE_BY_FAMILY = {"SD1": 512, "SD2": 768, "SDXL": 1024}
#: Flow-matching families: the canvas (width, height) in pixels their configured shift belongs to, per
#: frame for video. Sources per family: README, "Flow models: the shift grows with the canvas".
FLOW_BASE_CANVAS = {
    "SD3": (1024, 1024), "Flux": (1024, 1024), "Flux Schnell": (1024, 1024), "Flux 2": (1024, 1024),
    "AuraFlow": (1024, 1024), "HiDream": (1024, 1024), "Lumina 2": (1024, 1024), "Z-Image": (1024, 1024),
    "Qwen-Image": (1328, 1328), "HunyuanImage 2.1": (2048, 2048),
    "Wan 2.1": (1280, 720), "Wan 2.2 5B": (1280, 704), "HunyuanVideo": (1280, 720), "LTX-Video": (768, 512),
    "Mochi": (848, 480),
}
BASE_SIDE_BY_FAMILY.update({family: math.sqrt(w * h) for family, (w, h) in FLOW_BASE_CANVAS.items()})
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


def latent_pixel_size(latent: dict, pixels_per_cell: int = LATENT_PIXELS_PER_CELL) -> tuple[int, int]:
    """(width, height) in pixels of a LATENT dict's samples, per frame for video (B, C, T, H, W): the last
    two dims are height and width, each cell `pixels_per_cell` pixels wide (the VAE's downscale)."""
    samples = latent["samples"]
    return samples.shape[-1] * pixels_per_cell, samples.shape[-2] * pixels_per_cell


def latent_tokens(latent: dict) -> int:
    """Latent cells per sample across frames and space (LTX-Video's token count: T·H·W)."""
    return math.prod(latent["samples"].shape[2:])
