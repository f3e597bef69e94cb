"""Guidance arithmetic: classifier-free guidance, Skip Layer Guidance, CFG rescale, windows. Pure torch."""
from __future__ import annotations

import torch

from .prediction import v_from_x0, x0_from_v


def skip_layer_guidance(guided: torch.Tensor, cond: torch.Tensor, cond_skipped: torch.Tensor,
                        scale: float) -> torch.Tensor:
    """guided + (cond − cond_with_layers_skipped)·scale (SD3.5 reference `SkipLayerCFGDenoiser`)."""
    return guided + (cond - cond_skipped) * scale


def _std(x: torch.Tensor) -> torch.Tensor:
    return x.std(dim=tuple(range(1, x.ndim)), keepdim=True)


def rescale_cfg(guided: torch.Tensor, cond: torch.Tensor, phi: float) -> torch.Tensor:
    """Lin et al. 2023 (arXiv 2305.08891), rescaled classifier-free guidance: scale the guided prediction to the
    conditional one's std (over all non-batch dims), then mix φ of it with 1 − φ of the original."""
    rescaled = guided * (_std(cond) / _std(guided))
    return phi * rescaled + (1.0 - phi) * guided


def rescale_cfg_x0(x: torch.Tensor, sigma, guided_x0: torch.Tensor, cond_x0: torch.Tensor,
                   phi: float) -> torch.Tensor:
    """`rescale_cfg` done in v space (where Lin et al. define it) on x0 predictions, back to x0."""
    guided_v = v_from_x0(x, guided_x0, sigma)
    cond_v = v_from_x0(x, cond_x0, sigma)
    return x0_from_v(x, rescale_cfg(guided_v, cond_v, phi), sigma)


def in_step_window(step: int, steps: int, start: float, end: float) -> bool:
    """The SD3.5 reference's gate: start·steps < step < end·steps (both bounds exclusive)."""
    return start * steps < step < end * steps


def in_step_range(step: int, steps: int, start: float, end: float) -> bool:
    """musubi-tuner's and Wan2GP's gate: int(start·steps) ≤ step < int(end·steps)."""
    return int(start * steps) <= step < int(end * steps)


def step_index(schedule, sigma: float) -> int:
    """Index i of the step whose interval schedule[i] ≥ σ > schedule[i+1] holds σ (a sampler's
    intermediate evaluations belong to the step they start in). `schedule`: floats, first to last."""
    threshold = sigma * (1 - 1e-6)
    return max((i for i, value in enumerate(schedule[:-1]) if value >= threshold), default=0)


def in_sigma_window(sigma: float, sigma_start: float, sigma_end: float) -> bool:
    """ComfyUI's sigma-percent gate: sigma_end ≤ σ ≤ sigma_start."""
    return sigma_end <= sigma <= sigma_start
