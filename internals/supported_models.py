"""Door to ComfyUI's model configs (comfy/supported_models.py, comfy/latent_formats.py): which family a
loaded model is, and how many pixels one latent cell covers.

Assumptions (checked by `contract_problems`): a loaded model's `model.model.model_config` is an instance
of the family's config class (SDXL, SD20, SD15, SD3, Flux, WAN21_T2V, … and their subclasses: SDXL
refiners, inpaint and v-pred variants, Wan's i2v/VACE configs); a config class that subclasses another
family's (FluxSchnell and Flux2 under Flux, WAN22_T2V under WAN21_T2V, HunyuanVideo15 under HunyuanVideo)
is listed before it. The model's `latent_format` says its VAE's spatial downscale in
`spacial_downscale_ratio` (0.33) or, on releases without that attribute (0.3.75), is one of the classes in
`DOWNSCALE_WITHOUT_ATTRIBUTE` or downscales 8×.
"""
from __future__ import annotations

import comfy.latent_formats
import comfy.supported_models

from ..errors import SNRToolkitError
from ..schedules.resolution import BASE_SIDE_BY_FAMILY, LATENT_PIXELS_PER_CELL

#: (family, config class name), most specific first: a subclass's row comes before its parent's.
#: Families with no row in BASE_SIDE_BY_FAMILY (refiners, checkpoints trained at several sizes) are
#: named so that their parent's resolution is not used by mistake; the node asks for base_side.
FAMILY_CONFIGS = (
    ("SDXL", "SDXL"), ("SD2", "SD20"), ("SD1", "SD15"),
    ("SD3", "SD3"),
    ("Flux Schnell", "FluxSchnell"), ("Flux 2", "Flux2"), ("Flux", "Flux"),
    ("AuraFlow", "AuraFlow"), ("HiDream", "HiDream"), ("Z-Image", "ZImage"), ("Lumina 2", "Lumina2"),
    ("Qwen-Image", "QwenImage"), ("HunyuanImage 2.1", "HunyuanImage21"),
    ("HunyuanImage 2.1 refiner", "HunyuanImage21Refiner"), ("HunyuanVideo 1.5", "HunyuanVideo15"),
    ("HunyuanVideo", "HunyuanVideo"),
    ("Wan 2.2 5B", "WAN22_T2V"), ("Wan 2.1", "WAN21_T2V"),
    ("LTX-2", "LTXAV"), ("LTX-Video", "LTXV"), ("Mochi", "GenmoMochi"),
)
#: Config classes newer than ComfyUI 0.3.75: detected where the host has them, not required.
NEWER_CONFIGS = {"LTXAV"}

#: The family's own resolution rule in ComfyUI (schedules.flow_shift.family_rule_mu), where it has one.
FAMILY_RULES = {"Flux": "flux", "Flux 2": "flux2", "LTX-Video": "ltxv"}

#: VAE downscale of latent formats on releases whose LatentFormat has no `spacial_downscale_ratio`
#: (0.3.75): the values 0.33 declares for the classes 0.3.75 already has; any other format is 8×.
DOWNSCALE_WITHOUT_ATTRIBUTE = {"Flux2": 16, "LTXV": 32, "Wan22": 16, "HunyuanImage21": 32, "HunyuanVideo15": 16,
                               "ChromaRadiance": 1, "SC_Prior": 42, "SC_B": 4}


def model_family(model) -> str:
    """The family name from the loaded model's config ('SDXL', 'SD3', 'Flux', 'Wan 2.1', …), else the
    config's class name."""
    config = model.model.model_config
    for family, class_name in FAMILY_CONFIGS:
        config_class = getattr(comfy.supported_models, class_name, None)
        if config_class is not None and isinstance(config, config_class):
            return family
    return type(config).__name__


def base_side_for(model, who: str) -> float:
    """The family's training side in pixels (√(w·h) of its base canvas), or an error asking for base_side."""
    family = model_family(model)
    if family not in BASE_SIDE_BY_FAMILY:
        raise SNRToolkitError(f"{who}: no known training resolution for a {family} model; "
                              "set base_side to the side (pixels) it was trained at.")
    return BASE_SIDE_BY_FAMILY[family]


def pixels_per_latent_cell(model) -> int:
    """How many pixels one latent cell spans per side (the VAE's spatial downscale: 8, 16, 32 …)."""
    latent_format = model.model.latent_format
    ratio = getattr(latent_format, "spacial_downscale_ratio", None)
    if ratio is None:
        ratio = DOWNSCALE_WITHOUT_ATTRIBUTE.get(type(latent_format).__name__, LATENT_PIXELS_PER_CELL)
    return int(ratio)


def contract_problems() -> list[str]:
    found = [f"comfy.supported_models.{name} is gone (family detection for the base resolution)"
             for _, name in FAMILY_CONFIGS
             if name not in NEWER_CONFIGS and not isinstance(getattr(comfy.supported_models, name, None), type)]
    # A subclass listed after its parent would never be detected.
    classes = [(name, getattr(comfy.supported_models, name, None)) for _, name in FAMILY_CONFIGS]
    for i, (name, cls) in enumerate(classes):
        for parent_name, parent in classes[:i]:
            if isinstance(cls, type) and isinstance(parent, type) and issubclass(cls, parent) and cls is not parent:
                found.append(f"comfy.supported_models.{name} now subclasses {parent_name}, listed before it")
    for name, ratio in DOWNSCALE_WITHOUT_ATTRIBUTE.items():
        latent_format = getattr(comfy.latent_formats, name, None)
        declared = getattr(latent_format, "spacial_downscale_ratio", None) if latent_format else None
        if declared is not None and int(declared) != ratio:
            found.append(f"comfy.latent_formats.{name} declares a spatial downscale of {declared}, not {ratio}")
    return found
