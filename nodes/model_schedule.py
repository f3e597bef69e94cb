"""What the schedules need to know about a ComfyUI model, read in one place.

The pack keeps its own settings on the `model_sampling` object it patches in:
`snrt_sigma_hi_factor` (SNRTSigmaMaxScale) and `snrt_terminal_sigma` (SNRTVPrediction).
Only this module and the node modules import comfy.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

import comfy.model_sampling
import comfy.supported_models

from ..schedules.resolution import BASE_SIDE_BY_FAMILY
from ..schedules.ztsnr import NOVELAI_TERMINAL_SIGMA, plain_sigmas_from_zero_terminal_snr

#: SD-family VAEs turn 8×8 pixels into one latent cell.
LATENT_PIXELS_PER_CELL = 8


class SNRToolkitError(ValueError):
    """A user-facing error: says what is wrong and what to do instead."""


@dataclass(frozen=True)
class DiscreteSchedule:
    """A discrete-time (DDPM betas) model's schedule as the ZTSNR schedules see it."""
    plain_sigmas: torch.Tensor      # the non-ZTSNR table, σ_min … plain σ_max (14.6146 on SD/SDXL)
    zsnr: bool                      # the model's table ends in a ZTSNR terminal step
    model_terminal_sigma: float     # the table's top: 4518.76 / 20000 on ZTSNR, else plain σ_max
    sigma_hi_factor: float          # NovelAI resolution factor set by SNRTSigmaMaxScale (1 if none)
    chosen_terminal_sigma: float | None  # terminal σ chosen in SNRTVPrediction, if any

    @property
    def sigma_min(self) -> float:
        return float(self.plain_sigmas[0])

    @property
    def plain_sigma_max(self) -> float:
        return float(self.plain_sigmas[-1])


def is_flow_model(model_sampling) -> bool:
    return isinstance(model_sampling, (comfy.model_sampling.CONST, comfy.model_sampling.ModelSamplingDiscreteFlow,
                                       comfy.model_sampling.ModelSamplingFlux))


def read_discrete_schedule(model_sampling, who: str) -> DiscreteSchedule:
    """The model's schedule, or an error naming why `who` cannot use this model."""
    if is_flow_model(model_sampling):
        raise SNRToolkitError(
            f"{who}: this is a flow-matching model (SD3, Flux and kin): its σ runs 0…1 with no DDPM betas, "
            "so there is no terminal SNR to rescale or σ_max to scale. For more noise at high resolution "
            "raise the shift with ModelSamplingSD3 / ModelSamplingFlux instead.")
    if (not isinstance(model_sampling, comfy.model_sampling.ModelSamplingDiscrete)
            or isinstance(model_sampling, comfy.model_sampling.ModelSamplingDiscreteEDM)):
        raise SNRToolkitError(
            f"{who}: needs a discrete-timestep model (SD1.x, SD2.x, SDXL and their fine-tunes); "
            f"this model samples with {type(model_sampling).__name__}, which has no DDPM noise table.")
    table = model_sampling.sigmas.detach().double().cpu()
    zsnr = bool(getattr(model_sampling, "zsnr", False))
    if zsnr:
        plain = plain_sigmas_from_zero_terminal_snr(table, len(table), model_sampling.linear_start,
                                                    model_sampling.linear_end)
        if plain is None:
            raise SNRToolkitError(
                f"{who}: the model is marked ZTSNR but its sigma table is not a rescaled scaled-linear "
                "DDPM table, so its plain σ_max cannot be recovered. Was model_sampling replaced by another pack?")
    else:
        plain = table
    return DiscreteSchedule(
        plain_sigmas=plain,
        zsnr=zsnr,
        model_terminal_sigma=float(table[-1]),
        sigma_hi_factor=float(getattr(model_sampling, "snrt_sigma_hi_factor", 1.0)),
        chosen_terminal_sigma=getattr(model_sampling, "snrt_terminal_sigma", None),
    )


def default_terminal_sigma(schedule: DiscreteSchedule) -> float:
    """The ztsnr_* KSampler schedulers start at the σ chosen in SNRTVPrediction, else NovelAI's 20000."""
    return schedule.chosen_terminal_sigma or NOVELAI_TERMINAL_SIGMA


class _ScaledSigmaMax:
    """Mixin: `sigma_max` reads as the table's top × snrt_sigma_hi_factor, so core schedulers
    that read it (karras, exponential, kl_optimal) and ComfyUI's max-denoise check follow."""
    snrt_sigma_hi_factor = 1.0

    @property
    def sigma_max(self):
        return self.sigmas[-1] * self.snrt_sigma_hi_factor


_SCALED_CLASSES: dict[type, type] = {}


def _plain_class(cls: type) -> type:
    return cls.__mro__[2] if issubclass(cls, _ScaledSigmaMax) else cls


def with_sigma_hi_factor(model_sampling, factor: float):
    """A copy of `model_sampling` carrying NovelAI's resolution factor (the input is untouched).

    A plain model's σ_max is scaled. On a ZTSNR model σ_max is the terminal σ, a stand-in for
    ∞ that scaling cannot raise, so only the σ_hi of the ztsnr_* schedules follows the factor."""
    patched = copy.deepcopy(model_sampling)
    base = _plain_class(type(model_sampling))
    if getattr(patched, "zsnr", False) or factor == 1.0:
        patched.__class__ = base
    else:
        patched.__class__ = _SCALED_CLASSES.setdefault(
            base, type(f"SNRTScaled{base.__name__}", (_ScaledSigmaMax, base), {}))
    patched.snrt_sigma_hi_factor = float(factor)
    return patched


def model_family(model) -> str:
    """'SD1', 'SD2' or 'SDXL' from the loaded model's config, for the resolution base side."""
    config = model.model.model_config
    for family, cls in (("SDXL", comfy.supported_models.SDXL), ("SD2", comfy.supported_models.SD20),
                        ("SD1", comfy.supported_models.SD15)):
        if isinstance(config, cls):
            return family
    return type(config).__name__


def base_side_for(model, who: str) -> int:
    family = model_family(model)
    if family not in BASE_SIDE_BY_FAMILY:
        raise SNRToolkitError(f"{who}: no known training resolution for a {family} model; "
                              "set base_side to the side (pixels) it was trained at.")
    return BASE_SIDE_BY_FAMILY[family]


def latent_pixel_size(latent: dict) -> tuple[int, int]:
    """(width, height) in pixels of a LATENT dict's samples."""
    samples = latent["samples"]
    return samples.shape[-1] * LATENT_PIXELS_PER_CELL, samples.shape[-2] * LATENT_PIXELS_PER_CELL
