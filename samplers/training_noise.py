"""Training noise: offset, pyramid and input-perturbation noise on the trainer's own white noise. Pure torch.

The order is kohya sd-scripts' (`get_noise_noisy_latents_and_timesteps`): offset noise first (Guttenberg 2023;
kohya `apply_noise_offset`, with its adaptive form: strength + adaptive·|per-channel latent mean|, clamped ≥ 0),
then pyramid noise (Whitaker 2023) through the pack's own `pyramid_octaves`, so training and sampling share one
spectrum (like Pyramid Noise, each sample is normalised by its own std). The result ε′ is the noise the target is
made from. Input perturbation (Ning et al. 2023, arXiv 2301.11706; kohya `ip_noise_gamma`) then noises the input
with ε′ + γ·ξ while the model's target stays that of ε′: in x₀ units the target moves by gain(σ)·γ·ξ,
gain σ for ε and flow-velocity targets (× the flow model's noise scale), σ/(1 + σ²) for v targets.
"""
from __future__ import annotations

import torch

from .pyramid_noise import check_settings as check_pyramid, pyramid_octaves, sample_generator


def check_settings(offset: float, adaptive_offset: float, iterations: int, discount: float, ip_gamma: float) -> None:
    """Refuse settings the published formulas do not define."""
    if offset < 0:
        raise ValueError(f"the noise offset must be ≥ 0 (kohya's noise_offset, 0.1 is usual), got {offset}")
    if adaptive_offset and not offset:
        raise ValueError("the adaptive offset scales an offset: set a noise offset too (kohya applies "
                         "adaptive_noise_scale only with noise_offset)")
    check_pyramid(iterations, discount, 0.0)  # the Pyramid Noise node's own bounds
    if ip_gamma < 0:
        raise ValueError(f"the input-perturbation γ must be ≥ 0 (Ning et al. use 0.1), got {ip_gamma}")


def offset_noise(noise: torch.Tensor, latents: torch.Tensor, offset: float, adaptive_offset: float,
                 generator: torch.Generator) -> torch.Tensor:
    """noise + strength·N(0, 1) per sample and channel (Guttenberg 2023), strength = offset + adaptive·|mean|."""
    spatial = tuple(range(2, latents.ndim))
    strength = torch.full((latents.shape[0], latents.shape[1]) + (1,) * len(spatial), float(offset))
    if adaptive_offset:
        mean = latents.detach().float().mean(dim=spatial, keepdim=True).abs().cpu()
        strength = torch.clamp(strength + adaptive_offset * mean, min=0.0)
    draw = torch.randn(strength.shape, generator=generator)
    return noise + (strength * draw).to(device=noise.device, dtype=noise.dtype)


def training_noise(noise: torch.Tensor, latents: torch.Tensor, seed: int, offset: float = 0.0,
                   adaptive_offset: float = 0.0, iterations: int = 0, discount: float = 0.3) -> torch.Tensor:
    """ε′: the trainer's white noise with offset noise, then pyramid levels, added (float32, noise's shape).

    `seed` seeds this call's draws: the offset from one generator, each sample's pyramid levels from its own
    (`sample_generator(seed, batch index)`), so a sample's levels do not depend on the rest of the batch."""
    out = noise.float()
    if offset:
        out = offset_noise(out, latents, offset, adaptive_offset, torch.Generator().manual_seed(int(seed) % 2**63))
    if iterations:
        levels = [pyramid_octaves(out[j].cpu(), sample_generator(seed, j), iterations, discount)
                  for j in range(out.shape[0])]
        out = torch.stack(levels).to(out.device) if levels else out
    return out


def perturbation(shape, gamma: float, seed: int, device=None) -> torch.Tensor:
    """γ·ξ, ξ ~ N(0, I): the input perturbation of Ning et al. 2023 (float32)."""
    draw = torch.randn(tuple(shape), generator=torch.Generator().manual_seed(int(seed) % 2**63))
    return (gamma * draw).to(device)


def perturbation_target_gain(sigma: torch.Tensor, parameterisation: str, noise_scale: float = 1.0) -> torch.Tensor:
    """How far the x₀-equivalent target moves per unit of γ·ξ: σ (ε), σ/(1 + σ²) (v), s·σ (flow velocity)."""
    sigma = sigma.double()
    if parameterisation == "v":
        return sigma / (1.0 + sigma ** 2)
    if parameterisation == "flow":
        return noise_scale * sigma
    return sigma
