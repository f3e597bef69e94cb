"""Conversions between x0 ("denoised"), ε and v for the k-diffusion VE form x = x0 + σ·ε.

v = α·ε − s·x0 with α = 1/√(1+σ²), s = σ/√(1+σ²) is Salimans & Ho's v-parameterisation
(arXiv 2202.00512) of the VP latent α·x0 + s·ε = x/√(1+σ²), with σ_data = 1. Pure torch.
"""
from __future__ import annotations

import torch


def _sigma_like(sigma, x: torch.Tensor) -> torch.Tensor:
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    return sigma.reshape(sigma.shape[:1] + (1,) * (x.ndim - 1)) if sigma.ndim else sigma


def v_from_x0(x: torch.Tensor, x0: torch.Tensor, sigma) -> torch.Tensor:
    """v = (x − x0)/(σ·√(1+σ²)) − σ·x0/√(1+σ²), from ε = (x − x0)/σ (Salimans & Ho 2022)."""
    sigma = _sigma_like(sigma, x)
    root = torch.sqrt(1.0 + sigma**2)
    return (x - x0) / (sigma * root) - sigma * x0 / root


def x0_from_v(x: torch.Tensor, v: torch.Tensor, sigma) -> torch.Tensor:
    """x0 = x/(1+σ²) − v·σ/√(1+σ²), the inverse of `v_from_x0`."""
    sigma = _sigma_like(sigma, x)
    return x / (1.0 + sigma**2) - v * sigma / torch.sqrt(1.0 + sigma**2)
