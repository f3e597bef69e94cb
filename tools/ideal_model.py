"""A perfect diffusion model, in closed form: the exact denoiser of a Gaussian mixture. Pure torch.

Data: x₀ ~ Σₖ πₖ N(μₖ, s²I) over latents of shape (C, H, W). Under x = x₀ + σε the posterior mean
is E[x₀ | x] = Σₖ wₖ(x) (μₖ + s²/(s²+σ²)(x − μₖ)) with wₖ ∝ πₖ N(x; μₖ, (s²+σ²)I) (Tweedie's
formula for a mixture, e.g. Karras et al. 2022 §2); `denoise_flow` is the same posterior for the
rectified-flow path of SD3 and Flux. Put into ComfyUI's sampler in place of the
network, it makes the NovelAI V3 claims measurable: which *mode* (mean colour, large shape) a sample
lands in is decided where σ is comparable to √(H·W)·|μⱼ − μₖ|, a σ that grows with the canvas side.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

#: Mode recipes (name, RGB-ish level per channel pattern); level A is the mode contrast.
MODE_NAMES = ["black", "white", "grey", "left/right", "top/bottom", "disc"]


def mode_means(channels: int, height: int, width: int, contrast: float = 0.5) -> torch.Tensor:
    """The six modes' mean latents (K, C, H, W): flat black, white and grey, and three large shapes.
    Channel 3 (if any) stays 0 so that channels 0–2 read as RGB."""
    ys = torch.linspace(-1, 1, height).view(height, 1).expand(height, width)
    xs = torch.linspace(-1, 1, width).view(1, width).expand(height, width)
    flat = torch.ones(height, width)
    patterns = [-flat, flat, 0 * flat, torch.where(xs < 0, -flat, flat), torch.where(ys < 0, -flat, flat),
                torch.where(xs**2 + ys**2 < 0.45, flat, -flat)]
    means = torch.zeros(len(patterns), channels, height, width)
    for k, pattern in enumerate(patterns):
        means[k, : min(3, channels)] = contrast * pattern
    return means


@dataclass
class GaussianMixture:
    """The data distribution and its exact denoiser."""
    means: torch.Tensor                 # (K, C, H, W)
    spread: float = 0.3                 # within-mode std s (the "detail")
    weights: torch.Tensor | None = None  # (K,), uniform if None

    def __post_init__(self):
        k = self.means.shape[0]
        self.weights = torch.full((k,), 1.0 / k) if self.weights is None else self.weights / self.weights.sum()
        self._flat = self.means.reshape(k, -1).double()
        self._sq_norms = (self._flat**2).sum(1)

    def responsibilities(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """wₖ(x): posterior mode probabilities at noise level σ, (B, K)."""
        flat = x.reshape(x.shape[0], -1).double()
        var = self.spread**2 + torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1) ** 2
        dist2 = (flat**2).sum(1, keepdim=True) - 2 * flat @ self._flat.T + self._sq_norms
        return torch.softmax(self.weights.double().log() - dist2 / (2 * var), dim=1)

    def denoise(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """E[x₀ | x] for x = x₀ + σε (the ideal "denoised" prediction)."""
        w = self.responsibilities(x, sigma)
        mean = (w @ self._flat).reshape(x.shape)
        shrink = (self.spread**2 / (self.spread**2 + torch.as_tensor(sigma, dtype=torch.float64) ** 2))
        shrink = shrink.reshape(-1, *([1] * (x.ndim - 1))) if shrink.ndim else shrink
        return (mean + shrink * (x.double() - mean)).to(x.dtype)

    def denoise_flow(self, x: torch.Tensor, t) -> torch.Tensor:
        """E[x₀ | xₜ] for the rectified-flow path xₜ = (1 − t)·x₀ + t·ε (SD3, Flux: t is ComfyUI's σ ∈ [0, 1]).
        Given mode k, xₜ ~ N((1 − t)μₖ, ((1 − t)²s² + t²)I), so the posterior mean is
        μₖ + (1 − t)s² / ((1 − t)²s² + t²) · (xₜ − (1 − t)μₖ); exact at t = 1 (the prior mean), where the
        variance-exploding form x/(1 − t) would divide by zero."""
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
        t = t.expand(x.shape[0]) if t.numel() == 1 else t
        keep = (1 - t).reshape(-1, 1)
        var = (keep**2 * self.spread**2 + t.reshape(-1, 1) ** 2)                       # (B, 1)
        flat = x.reshape(x.shape[0], -1).double()
        # |x − (1 − t)μₖ|², expanded so no (B, K, D) tensor is built.
        dist2 = (flat**2).sum(1, keepdim=True) - 2 * keep * flat @ self._flat.T + keep**2 * self._sq_norms
        w = torch.softmax(self.weights.double().log() - dist2 / (2 * var), dim=1)     # (B, K)
        gain = keep * self.spread**2 / var                                           # (B, 1)
        # Σₖ wₖ (μₖ + g (x − (1 − t)μₖ)) = (1 − g (1 − t)) Σₖ wₖ μₖ + g x
        out = (1 - gain * keep) * (w @ self._flat) + gain * flat
        return out.reshape(x.shape).to(x.dtype)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n exact draws from the data distribution."""
        modes = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return self.means[modes] + self.spread * torch.randn((n, *self.means.shape[1:]), generator=generator)


def nearest_modes(mixture: GaussianMixture, samples: torch.Tensor) -> torch.Tensor:
    """Each sample's nearest mode mean (its "composition"), (B,)."""
    return mixture.responsibilities(samples, 0.0).argmax(1)


def global_error(mixture: GaussianMixture, samples: torch.Tensor) -> float:
    """Total variation between the samples' mode frequencies and the true weights (0 = exact, 1 = disjoint)."""
    counts = torch.bincount(nearest_modes(mixture, samples), minlength=len(mixture.weights)).double()
    return 0.5 * float((counts / counts.sum() - mixture.weights.double()).abs().sum())


def local_error(mixture: GaussianMixture, samples: torch.Tensor) -> float:
    """Mean |std(x − μ_mode) / s − 1| over samples: how far the within-mode spread ("detail") is from true."""
    modes = nearest_modes(mixture, samples)
    residual = (samples.double() - mixture.means[modes].double()).reshape(samples.shape[0], -1)
    return float((residual.std(1) / mixture.spread - 1).abs().mean())


def mode_share(mixture: GaussianMixture, samples: torch.Tensor, names=("black", "white")) -> float:
    """Fraction of samples in the named modes (black and white: 1/3 in the true distribution)."""
    modes = nearest_modes(mixture, samples)
    wanted = torch.tensor([MODE_NAMES.index(name) for name in names])
    return float(torch.isin(modes, wanted).double().mean())
