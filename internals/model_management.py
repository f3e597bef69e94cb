"""Door to ComfyUI's device choice (comfy/model_management.py): where a new latent lives.

Assumption: intermediate_device() returns the torch.device ComfyUI's own Empty Latent nodes put
new latents on (the CPU unless --gpu-only)."""
from __future__ import annotations

import torch

import comfy.model_management


def intermediate_device() -> torch.device:
    return comfy.model_management.intermediate_device()


def contract_problems() -> list[str]:
    function = getattr(comfy.model_management, "intermediate_device", None)
    if function is None:
        return ["comfy.model_management.intermediate_device is gone (where new latents live)"]
    if not isinstance(function(), torch.device):
        return ["comfy.model_management.intermediate_device() no longer returns a torch.device"]
    return []
