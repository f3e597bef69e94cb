"""Door to ComfyUI's model configs (comfy/supported_models.py): which family a loaded model is.

Assumption: a loaded model's `model.model.model_config` is an instance of the family's config class
(SDXL, SD20, SD15 and their subclasses: SDXL refiners, inpaint and v-pred variants)."""
from __future__ import annotations

import comfy.supported_models

from ..errors import SNRToolkitError
from ..schedules.resolution import BASE_SIDE_BY_FAMILY

#: Most specific first: SD20 subclasses SD15-style configs in some releases.
FAMILY_CONFIGS = (("SDXL", "SDXL"), ("SD2", "SD20"), ("SD1", "SD15"))


def model_family(model) -> str:
    """'SD1', 'SD2' or 'SDXL' from the loaded model's config, else the config's class name."""
    config = model.model.model_config
    for family, class_name in FAMILY_CONFIGS:
        if isinstance(config, getattr(comfy.supported_models, class_name)):
            return family
    return type(config).__name__


def base_side_for(model, who: str) -> int:
    """The family's training side in pixels, or an error asking for base_side."""
    family = model_family(model)
    if family not in BASE_SIDE_BY_FAMILY:
        raise SNRToolkitError(f"{who}: no known training resolution for a {family} model; "
                              "set base_side to the side (pixels) it was trained at.")
    return BASE_SIDE_BY_FAMILY[family]


def contract_problems() -> list[str]:
    return [f"comfy.supported_models.{name} is gone (family detection for the base resolution)"
            for _, name in FAMILY_CONFIGS if not isinstance(getattr(comfy.supported_models, name, None), type)]
