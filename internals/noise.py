"""Door to ComfyUI's noise (comfy/sample.py): prepare_noise, the initial noise of KSampler and of
RandomNoise, and fix_empty_latent_channels.

Assumptions: prepare_noise(latent, seed, noise_inds) returns CPU noise of the latent's shape and
dtype for that seed: without noise_inds one randn for the whole batch, with them one (1, …) draw per
index up to the largest (0.33 draws float32 and casts; 0.3.75 draws in the latent's dtype). The
pack takes that noise as it is rather than re-creating it, so it follows ComfyUI wherever it goes;
fix_empty_latent_channels(model, latent) widens an all-zero latent to the model's channel count."""
from __future__ import annotations

import inspect

import torch

import comfy.sample


def prepare_noise(samples: torch.Tensor, seed: int, batch_index=None) -> torch.Tensor:
    """What ComfyUI's own noise is for this latent, seed and batch_index."""
    return comfy.sample.prepare_noise(samples, seed, batch_index)


def fix_empty_latent_channels(model, samples: torch.Tensor) -> torch.Tensor:
    return comfy.sample.fix_empty_latent_channels(model, samples)


def contract_problems() -> list[str]:
    found = []
    for name, parameters in (("prepare_noise", ["latent_image", "seed", "noise_inds"]),
                             ("fix_empty_latent_channels", ["model", "latent_image"])):
        function = getattr(comfy.sample, name, None)
        if function is None:
            found.append(f"comfy.sample.{name} is gone")
        elif list(inspect.signature(function).parameters)[:len(parameters)] != parameters:
            found.append(f"comfy.sample.{name}'s parameters are no longer {parameters}")
    if not found:
        latent = torch.zeros(2, 4, 3, 5)
        noise = prepare_noise(latent, 7)
        if noise.shape != latent.shape or noise.dtype != latent.dtype:
            found.append("prepare_noise no longer returns noise of the latent's shape and dtype")
    return found
