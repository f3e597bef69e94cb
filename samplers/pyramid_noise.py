"""Multi-resolution ("pyramid") and offset noise. Pure torch.

Pyramid noise (Whitaker, "Multi-Resolution Noise for Diffusion Model Training", 2023; kohya
sd-scripts' `pyramid_noise_like`): start from white noise, then for i = 0 … iterations−1 add
discountⁱ × bilinear-upsampled randn of size ⌊side / rⁱ⌋ (≥ 1), r = random·2 + 2 drawn per level,
stopping once a side reaches 1 — so level 0 (rⁱ = 1) is a second full-resolution white draw with
weight 1. Offset noise (Guttenberg 2023; kohya's `apply_noise_offset`) adds strength·N(0, 1) per
sample and channel. The sum is divided by its std once. Both put energy into the lowest
frequencies (mean colour, large shapes) that plain Gaussian noise barely touches.

Deliberate differences from the published loop, which leave the expected spectrum unchanged:
each sample is normalised by its own std (not one std over the batch) and draws its levels from
its own generator (seed, batch index), so a sample does not depend on what else is in the batch.
The white noise is an argument: the nodes pass ComfyUI's own noise for the seed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def check_settings(iterations: int, discount: float, offset_strength: float) -> None:
    """Refuse settings the published loop does not define."""
    if iterations < 0:
        raise ValueError(f"iterations must be ≥ 0, got {iterations}")
    if not 0.0 <= discount < 1.0:
        raise ValueError(f"discount must be within [0, 1), got {discount}")
    if offset_strength < 0:
        raise ValueError(f"offset_strength must be ≥ 0, got {offset_strength}")


def pyramid_octaves(white: torch.Tensor, generator: torch.Generator, iterations: int, discount: float,
                    offset_strength: float = 0.0) -> torch.Tensor:
    """One sample's pyramid noise (shape C, *spatial, float32) from its white noise and a generator.

    Levels i = 0 … iterations−1 as in kohya's `pyramid_noise_like` (level 0 is a second white draw,
    weight 1); the result has std 1. With nothing added (iterations 0, no offset) the white noise
    is returned unchanged."""
    if white.ndim < 2 or white.ndim - 1 not in _MODES:
        raise ValueError(f"expected one sample shaped (C, H, W) or (C, T, H, W), got {tuple(white.shape)}")
    check_settings(iterations, discount, offset_strength)
    channels, spatial = white.shape[0], tuple(white.shape[1:])
    noise = white.float().clone()
    if iterations == 0 and not offset_strength:
        return noise
    for i in range(iterations):
        r = float(torch.rand((), generator=generator)) * 2 + 2
        size = [max(1, int(side / r**i)) for side in spatial]
        coarse = torch.randn((1, channels, *size), generator=generator)
        up = F.interpolate(coarse, size=spatial, mode=_MODES[len(spatial)], align_corners=False)
        noise += up[0] * discount**i
        if min(size) == 1:
            break
    if offset_strength:
        noise += offset_strength * torch.randn((channels,) + (1,) * len(spatial), generator=generator)
    return noise / noise.std()


def sample_generator(seed: int, batch_index: int) -> torch.Generator:
    """The level generator of one sample: depends only on the seed and the sample's batch index."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(batch_index) * 7919 + 0x5EED) % (2**63))


def pyramid_noise(white: torch.Tensor, seed: int, iterations: int = 6, discount: float = 0.3,
                  offset_strength: float = 0.0, batch_indices: list[int] | None = None) -> torch.Tensor:
    """Pyramid noise (float32) for a batch of white noise shaped (B, C, H, W) or (B, C, T, H, W).

    Sample j is built on white[j] with the levels of `sample_generator(seed, batch_indices[j])`
    (batch index j when none are given). An empty batch (B = 0) gives an empty tensor of its shape."""
    if white.ndim < 3:
        raise ValueError(f"expected a latent batch shaped (B, C, ...), got {tuple(white.shape)}")
    indices = list(batch_indices) if batch_indices is not None else list(range(white.shape[0]))
    if len(indices) != white.shape[0]:
        raise ValueError(f"{len(indices)} batch indices for a batch of {white.shape[0]}")
    check_settings(iterations, discount, offset_strength)
    if not indices:  # an empty batch: no sample to build, an empty tensor back, as ComfyUI's own noise gives
        return white.float().clone()
    return torch.stack([pyramid_octaves(white[j], sample_generator(seed, k), iterations, discount, offset_strength)
                        for j, k in enumerate(indices)])
