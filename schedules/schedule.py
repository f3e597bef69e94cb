"""A ZTSNR-aware schedule: one terminal step, then a shape from σ_hi to σ_min, then 0.

On a Zero Terminal SNR model (Lin et al. 2023) the first step must start from pure noise
(σ = ∞, stood in for by a finite terminal σ) so the model, not the noise, sets the mean
colour. Spending many steps between the terminal σ and the plain σ_max (14.6 for SD/SDXL),
as core karras does there, buys little; so this schedule takes exactly one step from the
terminal σ to σ_hi, where σ_hi = plain σ_max × the NovelAI resolution factor. Pure torch.
"""
from __future__ import annotations

import math

import torch

from .shapes import SHAPES, TABLE_SHAPES


def ztsnr_schedule(shape: str, steps: int, sigma_hi: float, sigma_min: float,
                   terminal_sigma: float | None, table: torch.Tensor | None = None) -> torch.Tensor:
    """`steps + 1` sigmas: [terminal_sigma,] shape from sigma_hi to sigma_min, 0.

    terminal_sigma None leaves the terminal step out (the shape then has all `steps`).
    `table` is the model's plain (non-ZTSNR) sigma table, needed by the table shapes."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a whole number ≥ 1, got {steps}")
    if not (math.isfinite(sigma_hi) and sigma_hi > sigma_min > 0):
        raise ValueError(f"need σ_hi > σ_min > 0, got σ_hi={sigma_hi}, σ_min={sigma_min}")
    if shape in TABLE_SHAPES and table is None:
        raise ValueError(f"shape {shape!r} is defined on the model's sigma table; none was given")
    steps = int(steps)
    head = []
    body_steps = steps
    if terminal_sigma is not None:
        if not terminal_sigma > sigma_hi:
            raise ValueError(f"the terminal sigma ({terminal_sigma:g}) must be above σ_hi ({sigma_hi:g}); "
                             "lower the σ_max base or the resolution factor, or choose terminal 'none'")
        head = [float(terminal_sigma)]
        body_steps = steps - 1
    body = SHAPES[shape](body_steps, sigma_min, sigma_hi, table=table).tolist() if body_steps > 0 else []
    return torch.tensor(head + body + [0.0], dtype=torch.float32)


def denoise_total_steps(steps: int, denoise: float) -> int:
    """How many steps a full schedule needs so its last `steps` cover `denoise` of it (as ComfyUI's
    BasicScheduler and KSampler: int(steps / denoise)); 0 means nothing to sample."""
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a whole number ≥ 1, got {steps}")
    if not 0.0 <= denoise <= 1.0:
        raise ValueError(f"denoise must be within 0 … 1, got {denoise}")
    if denoise <= 0.0:
        return 0
    return int(steps) if denoise >= 1.0 else int(steps / denoise)


def last_steps(sigmas: torch.Tensor, steps: int) -> torch.Tensor:
    """The tail of a schedule that a partial denoise samples: its last `steps` + 1 sigmas."""
    return sigmas[-(int(steps) + 1):]
