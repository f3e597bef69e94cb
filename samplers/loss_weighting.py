"""Per-sample loss weights on the x₀ error that ComfyUI's trainer computes. Pure torch.

The trainer's loss is loss_fn(x̂₀, x₀). With ComfyUI's σ (x = x₀ + σ·ε for discrete models, xₜ = (1 − σ)·x₀ + σ·ε
for flow models) the errors of the other targets are the x₀ error scaled, so every published objective is
that loss times a weight of σ alone:

- ε target: ε̂ − ε = −(x̂₀ − x₀)/σ, so ε-MSE = x₀-MSE · SNR, SNR = 1/σ²;
- v target (Salimans & Ho 2022): v̂ − v = −(x̂₀ − x₀)·√(1+σ²)/σ, so v-MSE = x₀-MSE · (SNR + 1);
- flow velocity u = ε − x₀ (Esser et al. 2024): û − u = −(x̂₀ − x₀)/σ, so u-MSE = x₀-MSE / σ²,
  with SNR = ((1 − σ)/(s·σ))² for a flow model that scales its noise by s (1 for SD3 and Flux).

On top of the target's own weight: Min-SNR-γ (Hang et al. 2023, arXiv 2303.09556; kohya `apply_snr_weight`:
ε·min(SNR, γ)/SNR, v·min(SNR, γ)/(SNR + 1), both min(SNR, γ) on x₀); debiased estimation (Yu et al. 2023,
arXiv 2310.08442; kohya `apply_debiased_estimation`: ε·1/√SNR, v·1/(SNR + 1), SNR capped at 1000); SD3's
`sigma_sqrt` σ⁻² and `cosmap` 2/(π(1 − 2σ + 2σ²)) (Esser et al. 2024 §3.1; diffusers
`compute_loss_weighting_for_sd3`, applied there to the x₀ error its SD3 scripts precondition to).
"""
from __future__ import annotations

import math

import torch

PARAMETERISATIONS = ("eps", "v", "flow")
WEIGHTINGS = ("trainer", "standard", "min_snr", "debiased", "sigma_sqrt", "cosmap")
#: Weightings defined for one kind of model only (the others raise).
DISCRETE_ONLY = ("min_snr", "debiased")
FLOW_ONLY = ("sigma_sqrt", "cosmap")
#: kohya caps the SNR at 1000 in the debiased weight (at timestep 0 the SNR is nearly infinite).
DEBIASED_SNR_CAP = 1000.0


def snr(sigma: torch.Tensor, parameterisation: str, noise_scale: float = 1.0) -> torch.Tensor:
    """Signal-to-noise ratio α²/σ_noise² at ComfyUI's σ: 1/σ² (discrete ε / v), ((1 − σ)/(s·σ))² (flow)."""
    sigma = sigma.double()
    if parameterisation == "flow":
        return ((1.0 - sigma) / (noise_scale * sigma)) ** 2
    return sigma ** -2


def check_weighting(weighting: str, parameterisation: str, gamma: float) -> None:
    """Refuse a weighting that is undefined for this model or these parameters."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown loss weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}")
    if parameterisation not in PARAMETERISATIONS:
        raise ValueError(f"unknown parameterisation {parameterisation!r}")
    if weighting == "min_snr" and not gamma > 0:
        raise ValueError(f"Min-SNR γ must be > 0 (Hang et al. use 5), got {gamma}")
    if weighting in DISCRETE_ONLY and parameterisation == "flow":
        raise ValueError(f"{weighting} is defined for ε- and v-prediction models (DDPM schedules)")
    if weighting in FLOW_ONLY and parameterisation != "flow":
        raise ValueError(f"{weighting} is SD3's weighting for flow-matching models (σ in [0, 1])")


def target_weight(sigma: torch.Tensor, parameterisation: str) -> torch.Tensor:
    """The factor that turns the x₀-MSE into the MSE of the model's own target (ε, v or flow velocity)."""
    sigma = sigma.double()
    if parameterisation == "eps":
        return sigma ** -2
    if parameterisation == "v":
        return sigma ** -2 + 1.0
    return sigma ** -2


def x0_loss_weight(sigma: torch.Tensor, parameterisation: str, weighting: str, gamma: float = 5.0,
                   noise_scale: float = 1.0) -> torch.Tensor:
    """Per-sample weight (float64, shape of `sigma`) on the trainer's x₀ loss that gives `weighting`."""
    check_weighting(weighting, parameterisation, gamma)
    sigma = sigma.double()
    ratio = snr(sigma, parameterisation, noise_scale)
    if weighting == "trainer":
        return torch.ones_like(sigma)
    if weighting == "standard":
        return target_weight(sigma, parameterisation)
    if weighting == "min_snr":
        return torch.clamp(ratio, max=gamma)
    if weighting == "debiased":
        capped = torch.clamp(ratio, max=DEBIASED_SNR_CAP)
        own = 1.0 / (capped + 1.0) if parameterisation == "v" else capped ** -0.5
        return target_weight(sigma, parameterisation) * own
    if weighting == "sigma_sqrt":
        return sigma ** -2
    return 2.0 / (math.pi * (1.0 - 2.0 * sigma + 2.0 * sigma ** 2))
