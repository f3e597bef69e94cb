"""Multi-resolution ("pyramid") and offset noise. Pure torch.

Pyramid noise (Whitaker, "Multi-Resolution Noise for Diffusion Model Training", 2023; the
kohya sd-scripts form): white noise plus octaves of coarser noise, octave i drawn at
size / rⁱ with r ∈ [2, 4) random per octave, upsampled bilinearly and weighted discountⁱ,
stopping once a side reaches 1. Offset noise (Guttenberg 2023) adds strength·N(0, 1) per
sample and channel. Both put energy into the lowest frequencies (mean colour, large shapes)
that plain Gaussian noise barely touches.

Unlike kohya's single std over the batch, each sample is normalised by its own std, so a
sample does not depend on what else is in the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def pyramid_octaves(white: torch.Tensor, generator: torch.Generator, iterations: int, discount: float,
                    offset_strength: float = 0.0) -> torch.Tensor:
    """One sample's pyramid noise (shape C, *spatial), from its white noise and a generator.

    `iterations` counts the white level too (kohya: 6–10); octave i ≥ 1 adds discountⁱ·upsampled
    noise of size ⌊side / rⁱ⌋ (≥ 1). The result has std 1."""
    if white.ndim < 2 or white.ndim - 1 not in _MODES:
        raise ValueError(f"expected one sample shaped (C, H, W) or (C, T, H, W), got {tuple(white.shape)}")
    if iterations < 1:
        raise ValueError(f"iterations must be ≥ 1, got {iterations}")
    if not 0.0 <= discount < 1.0:
        raise ValueError(f"discount must be within [0, 1), got {discount}")
    channels, spatial = white.shape[0], white.shape[1:]
    noise = white.float().clone()
    for i in range(1, iterations):
        r = float(torch.rand((), generator=generator)) * 2 + 2
        size = [max(1, int(side / r**i)) for side in spatial]
        coarse = torch.randn((1, channels, *size), generator=generator)
        up = F.interpolate(coarse, size=tuple(spatial), mode=_MODES[len(spatial)], align_corners=False)
        noise += up[0] * discount**i
        if min(size) == 1:
            break
    if offset_strength:
        noise += offset_strength * torch.randn((channels,) + (1,) * len(spatial), generator=generator)
    return noise / noise.std()


def sample_generator(seed: int, batch_index: int) -> torch.Generator:
    """The octave generator of one sample: depends only on the seed and the sample's batch index."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(batch_index) * 7919 + 0x5EED) % (2**63))


def comfyui_white_noise(shape: tuple[int, ...], seed: int, batch_indices: list[int]) -> torch.Tensor:
    """White noise exactly as ComfyUI's `prepare_noise` draws it: batch index k is the k-th
    (1, *shape) draw from torch.manual_seed(seed)."""
    generator = torch.Generator().manual_seed(int(seed))
    draws = [torch.randn((1, *shape), generator=generator) for _ in range(max(batch_indices) + 1)]
    return torch.cat([draws[k] for k in batch_indices])


def pyramid_noise(shape: tuple[int, ...], seed: int, iterations: int = 6, discount: float = 0.3,
                  offset_strength: float = 0.0, batch_indices: list[int] | None = None) -> torch.Tensor:
    """Pyramid noise for a latent batch of `shape` (B, C, H, W) or (B, C, T, H, W).

    Sample k's white level equals ComfyUI's own noise for (seed, batch index k), and its octaves
    come from `sample_generator(seed, k)`, so a sample is the same whatever batch it is in."""
    if len(shape) < 3:
        raise ValueError(f"expected a latent batch shaped (B, C, ...), got {tuple(shape)}")
    indices = list(batch_indices) if batch_indices is not None else list(range(shape[0]))
    if len(indices) != shape[0]:
        raise ValueError(f"{len(indices)} batch indices for a batch of {shape[0]}")
    white = comfyui_white_noise(tuple(shape[1:]), seed, indices)
    return torch.stack([pyramid_octaves(white[j], sample_generator(seed, k), iterations, discount, offset_strength)
                        for j, k in enumerate(indices)])
