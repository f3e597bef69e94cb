"""Zero Terminal SNR maths on DDPM betas, ᾱ and sigmas (pure torch, never imports comfy).

Conventions: ᾱ_t = Π(1 − β), σ_t = √((1 − ᾱ_t) / ᾱ_t) (the k-diffusion / ComfyUI sigma of a
discrete-time model), SNR_t = ᾱ_t / (1 − ᾱ_t) = 1 / σ_t². Everything is computed in float64.
"""
from __future__ import annotations

import math

import torch

#: ᾱ_T that ComfyUI (and A1111) pin the terminal step to after the ZTSNR rescale.
COMFYUI_TERMINAL_ALPHA_CUMPROD = 4.8973451890853435e-08
#: σ at that ᾱ_T: ≈ 4518.76.
COMFYUI_TERMINAL_SIGMA = math.sqrt((1.0 - COMFYUI_TERMINAL_ALPHA_CUMPROD) / COMFYUI_TERMINAL_ALPHA_CUMPROD)
#: NovelAI Diffusion V3 (arXiv 2409.15997) samples from σ = 20000 as a practical infinity.
NOVELAI_TERMINAL_SIGMA = 20000.0
#: diffusers pins ᾱ_T = 2⁻²⁴ instead, σ ≈ 4096.
DIFFUSERS_TERMINAL_SIGMA = math.sqrt((1.0 - 2.0**-24) / 2.0**-24)

#: SD1.x / SD2.x / SDXL training schedule ("scaled linear" betas).
SD_LINEAR_START = 0.00085
SD_LINEAR_END = 0.012
SD_TIMESTEPS = 1000


def scaled_linear_betas(timesteps: int = SD_TIMESTEPS, linear_start: float = SD_LINEAR_START,
                        linear_end: float = SD_LINEAR_END) -> torch.Tensor:
    """Betas linear in √β, the schedule of Stable Diffusion (LDM `make_beta_schedule("linear")`)."""
    if timesteps < 2:
        raise ValueError(f"timesteps must be at least 2, got {timesteps}")
    return torch.linspace(linear_start**0.5, linear_end**0.5, timesteps, dtype=torch.float64) ** 2


def alphas_cumprod_from_betas(betas: torch.Tensor) -> torch.Tensor:
    """ᾱ_t = Π_{s≤t} (1 − β_s) (Ho et al. 2020, eq. 4)."""
    return torch.cumprod(1.0 - betas.double(), dim=0)


def sigmas_from_alphas_cumprod(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """σ_t = √((1 − ᾱ_t) / ᾱ_t), the variance-exploding sigma of a VP timestep (Karras et al. 2022)."""
    alphas_cumprod = alphas_cumprod.double()
    return ((1.0 - alphas_cumprod) / alphas_cumprod).sqrt()


def alphas_cumprod_from_sigmas(sigmas: torch.Tensor) -> torch.Tensor:
    """ᾱ = 1 / (1 + σ²), the inverse of `sigmas_from_alphas_cumprod`."""
    return 1.0 / (1.0 + sigmas.double() ** 2)


def rescale_alphas_cumprod_zero_terminal_snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Shift and scale √ᾱ so that √ᾱ_T = 0 and √ᾱ_0 is kept (Lin et al. 2023, Algorithm 1)."""
    sqrt_ac = alphas_cumprod.double().sqrt()
    first, last = sqrt_ac[0], sqrt_ac[-1]
    if not first > last:
        raise ValueError("ᾱ must decrease over the schedule to be rescaled to zero terminal SNR")
    sqrt_ac = (sqrt_ac - last) * (first / (first - last))
    return sqrt_ac**2


def enforce_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Betas whose terminal SNR is exactly 0 (Lin et al. 2023, "Common Diffusion Noise Schedules
    and Sample Steps Are Flawed", Algorithm 1); β_T becomes 1."""
    alphas_cumprod = rescale_alphas_cumprod_zero_terminal_snr(alphas_cumprod_from_betas(betas))
    alphas = torch.cat([alphas_cumprod[:1], alphas_cumprod[1:] / alphas_cumprod[:-1]])
    return 1.0 - alphas


def zero_terminal_snr_finite_sigmas(plain_sigmas: torch.Tensor) -> torch.Tensor:
    """Sigmas of steps 0 … T−1 after Lin et al.'s rescale (step T's σ is ∞ and left out)."""
    alphas_cumprod = rescale_alphas_cumprod_zero_terminal_snr(alphas_cumprod_from_sigmas(plain_sigmas))
    return sigmas_from_alphas_cumprod(alphas_cumprod[:-1])


def zero_terminal_snr_sigmas(plain_sigmas: torch.Tensor,
                             terminal_sigma: float = COMFYUI_TERMINAL_SIGMA) -> torch.Tensor:
    """A model's sigma table after Lin et al.'s rescale; the terminal σ (∞ in theory) is pinned to
    `terminal_sigma` so the table stays finite: ComfyUI pins 4518.76, NovelAI samples from 20000."""
    if not terminal_sigma > 0 or not math.isfinite(terminal_sigma):
        raise ValueError(f"terminal_sigma must be a finite positive number, got {terminal_sigma}")
    sigmas = zero_terminal_snr_finite_sigmas(plain_sigmas)
    if not terminal_sigma > float(sigmas[-1]):
        raise ValueError(f"terminal_sigma {terminal_sigma} must exceed the last finite sigma {float(sigmas[-1]):.4g}")
    return torch.cat([sigmas, sigmas.new_tensor([terminal_sigma])])


def plain_sigmas_from_zero_terminal_snr(zsnr_sigmas: torch.Tensor, timesteps: int, linear_start: float,
                                        linear_end: float, rtol: float = 1e-4) -> torch.Tensor | None:
    """The scaled-linear table a ZTSNR table was rescaled from, or None if it was not one.

    A ZTSNR table cannot be inverted (its terminal ᾱ is 0), so the candidate is rebuilt from the
    betas' parameters and accepted only if rescaling it reproduces every non-terminal sigma."""
    if len(zsnr_sigmas) != timesteps:
        return None
    plain = sigmas_from_alphas_cumprod(alphas_cumprod_from_betas(scaled_linear_betas(timesteps, linear_start, linear_end)))
    finite = zero_terminal_snr_finite_sigmas(plain)
    if torch.allclose(finite, zsnr_sigmas[:-1].double(), rtol=rtol, atol=0.0):
        return plain
    return None


def exact_plain_sigmas(sigmas: torch.Tensor, linear_start: float, linear_end: float,
                       rtol: float = 1e-4) -> torch.Tensor:
    """A plain scaled-linear table rebuilt in float64 from its betas when `sigmas` (a model's float32
    table) is one, so a ZTSNR rescale of it equals ComfyUI's own to the last bit; else `sigmas` unchanged."""
    rebuilt = sigmas_from_alphas_cumprod(alphas_cumprod_from_betas(scaled_linear_betas(len(sigmas), linear_start,
                                                                                       linear_end)))
    return rebuilt if torch.allclose(rebuilt, sigmas.double(), rtol=rtol, atol=0.0) else sigmas
