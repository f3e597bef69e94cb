"""Resolution-dependent timestep shift for flow-matching models (pure Python, never imports comfy).

Rectified flow (SD3, Flux, Wan, …) noises as x_t = (1 − t)·x₀ + t·ε, so its variance-exploding noise
level is σ_VE = t / (1 − t). Esser et al. 2024 (arXiv 2403.03206, §5.3.2) shift the timesteps for a
canvas of m pixels trained at n pixels by t_m = α·t_n / (1 + (α − 1)·t_n), α = √(m/n): in σ_VE terms
σ_VE,m = α·σ_VE,n, exactly NovelAI V3's "double the side, double σ" (arXiv 2409.15997).

ComfyUI keeps a flow model's shift in one of two forms, both covered here:
- ModelSamplingDiscreteFlow (SD3, Wan, AuraFlow, …): `shift` is α itself, σ = α·t / (1 + (α − 1)·t);
- ModelSamplingFlux (Flux, LTX-Video, Qwen-Image, …): `shift` is μ with σ = e^μ / (e^μ + 1/t − 1),
  the same curve with α = e^μ (Flux reference `time_shift`).
So a resolution factor multiplies α, or adds ln α to μ; `log_shift` (λ = ln α = μ) is the common unit.
"""
from __future__ import annotations

import math

#: ComfyUI's ModelSamplingFlux node (comfy_extras/nodes_model_advanced.py), as diffusers'
#: `calculate_shift` for FLUX.1-dev: μ linear in image tokens, 0.5 at 256 tokens, 1.15 at 4096.
FLUX_RULE = dict(base_shift=0.5, max_shift=1.15, base_tokens=256, max_tokens=4096)
#: ComfyUI's ModelSamplingLTXV node (comfy_extras/nodes_lt.py): μ linear in latent tokens (frames
#: included), 0.95 at 1024 tokens, 2.05 at 4096.
LTXV_RULE = dict(base_shift=0.95, max_shift=2.05, base_tokens=1024, max_tokens=4096)
#: Flux 2's μ rule depends on the step count too (BFL flux2 `compute_empirical_mu`; ComfyUI's Flux2Scheduler
#: takes steps, width and height). ComfyUI's configured Flux 2 μ (2.02) is the rule at 1024² and 50 steps (the
#: default of BFL's and diffusers' Flux2Pipeline); Scale σ_max by Resolution takes the steps the schedule will
#: have, defaulting to Flux2Scheduler's (and KSampler's) 20.
FLUX2_CONFIGURED_STEPS = 50
FLUX2_DEFAULT_STEPS = 20


def shifted_time(t: float, alpha: float) -> float:
    """t_m = α·t_n / (1 + (α − 1)·t_n), the SD3 resolution shift (Esser et al. 2024, §5.3.2)."""
    return alpha * t / (1 + (alpha - 1) * t)


def flux_time(t: float, mu: float) -> float:
    """σ = e^μ / (e^μ + 1/t − 1), Flux's time shift (BFL flux `time_shift`, ComfyUI flux_time_shift)."""
    if t <= 0:
        return 0.0
    return math.exp(mu) / (math.exp(mu) + 1 / t - 1)


def ve_sigma(t: float) -> float:
    """σ_VE = t / (1 − t): the noise-to-signal ratio of x_t = (1 − t)·x₀ + t·ε (Esser et al. 2024, §2)."""
    return math.inf if t >= 1 else t / (1 - t)


def sd3_resolution_factor(pixels: float, base_pixels: float) -> float:
    """α = √(m/n) for m canvas pixels against n training pixels (Esser et al. 2024, §5.3.2)."""
    if not (pixels > 0 and base_pixels > 0):
        raise ValueError(f"pixel counts must be positive, got {pixels} and {base_pixels}")
    return math.sqrt(pixels / base_pixels)


def log_shift(shift: float, form: str) -> float:
    """λ = ln α: the shift as the log of its σ_VE multiplier (`form` "alpha" for α, "mu" for Flux's μ)."""
    if form == "mu":
        return float(shift)
    if not shift > 0:
        raise ValueError(f"a flow shift α must be positive, got {shift}")
    return math.log(shift)


def shift_from_log(lam: float, form: str) -> float:
    """Back from λ = ln α to the form the model keeps (α, or Flux's μ = λ)."""
    return float(lam) if form == "mu" else math.exp(lam)


def scaled_shift(shift: float, form: str, factor: float) -> float:
    """The shift whose σ_VE is `factor` × this one's at every t: α·factor, or μ + ln factor."""
    if not factor > 0:
        raise ValueError(f"the resolution factor must be positive, got {factor}")
    return shift_from_log(log_shift(shift, form) + math.log(factor), form)


def linear_mu(tokens: float, base_shift: float, max_shift: float, base_tokens: float, max_tokens: float) -> float:
    """μ linear in token count through (base_tokens, base_shift) and (max_tokens, max_shift) (Flux
    reference `get_lin_function`; diffusers `calculate_shift`; ComfyUI ModelSamplingFlux / LTXV)."""
    slope = (max_shift - base_shift) / (max_tokens - base_tokens)
    return tokens * slope + base_shift - slope * base_tokens


def flux2_empirical_mu(tokens: float, steps: int) -> float:
    """Flux 2's μ for `tokens` image tokens and `steps` steps (BFL flux2 `compute_empirical_mu`, ComfyUI's
    Flux2Scheduler): linear in tokens above 4300, below that interpolated in steps between two lines."""
    a1, b1 = 8.73809524e-05, 1.89833333
    a2, b2 = 0.00016927, 0.45666666
    if tokens > 4300:
        return a2 * tokens + b2
    m_200, m_10 = a2 * tokens + b2, a1 * tokens + b1
    slope = (m_200 - m_10) / 190.0
    return slope * steps + m_200 - 200.0 * slope


def flux_tokens(width: float, height: float) -> float:
    """Flux / Flux 2 image tokens: one per 16×16 pixels (8× VAE and 2×2 patches, or Flux 2's 16× VAE)."""
    return width * height / 256.0


def family_rule_mu(rule: str, width: float, height: float, latent_tokens: float | None = None,
                   steps: int = FLUX2_DEFAULT_STEPS) -> float:
    """The μ a family's own ComfyUI rule gives at this canvas ("flux", "flux2", "ltxv"); Flux 2's also at
    `steps` steps, as ComfyUI's Flux2Scheduler(steps, width, height) computes it."""
    if rule == "flux":
        return linear_mu(flux_tokens(width, height), **FLUX_RULE)
    if rule == "flux2":
        if not (isinstance(steps, int) and steps >= 1):
            raise ValueError(f"Flux 2's rule needs the step count (≥ 1), got {steps!r}")
        return flux2_empirical_mu(round(flux_tokens(width, height)), steps)
    if rule == "ltxv":
        if latent_tokens is None:
            raise ValueError("LTX-Video's rule counts latent tokens across frames: it needs the latent")
        return linear_mu(latent_tokens, **LTXV_RULE)
    raise ValueError(f"unknown family rule {rule!r}")
