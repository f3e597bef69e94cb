"""The published pyramid-noise loop and the band spectrum the tests judge noise by (torch only, never the pack).

`published_pyramid_noise` is transcribed from the multi-resolution-noise report (seeds/003, Whitaker 2023) and
kohya sd-scripts' `pyramid_noise_like` / `apply_noise_offset`, in kohya's train_util order; the pack's own
noise is checked against it (tests/test_noise_spectrum.py, tests/test_host_training.py, `python3 -m tools
spectrum`)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

UPSAMPLE = {2: "bilinear", 3: "trilinear"}


def published_pyramid_noise(shape, iterations, discount, offset, rng):
    """kohya's train_util order: white noise, + offset·randn(B, C, 1, 1), then pyramid_noise_like."""
    b, c, *sides = shape
    noise = torch.randn(shape)
    if offset:
        noise = noise + offset * torch.randn((b, c) + (1,) * len(sides))
    for i in range(iterations):
        r = rng.random() * 2 + 2  # Rather than always going 2x
        size = [max(1, int(side / (r**i))) for side in sides]
        # nn.Upsample(size=(w, h), mode="bilinear"); 5-D video latents: the same rule over (T, H, W).
        noise += F.interpolate(torch.randn(b, c, *size), size=tuple(sides), mode=UPSAMPLE[len(sides)]) * discount**i
        if min(size) == 1:
            break  # Lowest resolution is 1x1
    return noise / noise.std()  # one std over the whole batch


def band_powers(noise):
    """Mean |FFT|²/N per sample in radial bands of normalised frequency ρ = |f|/0.5 (1 = Nyquist on an axis):
    DC, (0, 1/8], (1/8, 1/4], (1/4, 1/2], (1/2, 1], (1, √3], the empty ones left out."""
    dims = tuple(range(2, noise.ndim))
    power = torch.fft.fftn(noise.double(), dim=dims).abs() ** 2 / math.prod(noise.shape[2:])
    grids = torch.meshgrid(*[torch.fft.fftfreq(n, dtype=torch.float64) for n in noise.shape[2:]], indexing="ij")
    rho = torch.sqrt(sum(g**2 for g in grids)) / 0.5
    edges = [(-1.0, 0.0), (0.0, 1 / 8), (1 / 8, 1 / 4), (1 / 4, 1 / 2), (1 / 2, 1.0), (1.0, 2.0)]
    per_channel = power.mean(1)
    masks = [(rho > lo) & (rho <= hi) for lo, hi in edges]
    return torch.stack([per_channel[:, mask].mean(1) for mask in masks if mask.any()], dim=1)  # small sides skip one


def mean_and_error(groups):
    """Band means over draws and their standard errors, one observation per group (draws in a group share r)."""
    values = torch.stack(groups)
    return values.mean(0), values.std(0) / math.sqrt(len(groups))
