"""Door to ComfyUI's model_sampling objects (comfy/model_sampling.py): reading a discrete model's
σ table, building a sampling object for a prediction type, the σ_max class swap, and a flow model's shift.

The pack keeps its own settings on the `model_sampling` object it patches in:
`snrt_sigma_hi_factor` (SNRTSigmaMaxScale) and `snrt_terminal_sigma` (SNRTVPrediction).
Assumptions (checked by `contract_problems`, behaviourally where possible): ModelSamplingDiscrete
keeps its table in `sigmas` with `set_sigmas`, `linear_start`/`linear_end` and `zsnr`; `sigma_max`
is a class attribute that the core karras scheduler reads; prediction types mix in as
ModelSamplingDiscrete + EPS / V_PREDICTION (what ComfyUI's ModelSamplingDiscrete node builds).
Flow models: ModelSamplingDiscreteFlow keeps α in `shift` and `multiplier`, rebuilds its table with
`set_parameters(shift=, timesteps=, multiplier=)` (ModelSamplingAV also takes `audio_shift`, which must be
passed back) and gives σ = α·t / (1 + (α − 1)·t); ModelSamplingFlux keeps μ in `shift`, rebuilds with
`set_parameters(shift=, timesteps=)` and gives σ = e^μ / (e^μ + 1/t − 1) — so that multiplying α, or adding
ln α to μ, multiplies every σ/(1 − σ) of the table by α (what ComfyUI's ModelSamplingSD3 / ModelSamplingFlux
nodes rely on when they call set_parameters). The loader's own object stays at `model.model.model_sampling`.
SNR (`snr_form`, for Preview Sigmas): CONST's noise_scaling mixes (1 − σ)·x₀ + σ·ε and EPS's (and its
subclasses') x₀ + σ·ε, so SNR is ((1 − σ)/σ)² or 1/σ² (checked behaviourally).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

import comfy.model_sampling

from ..errors import SNRToolkitError
from ..schedules import flow_shift
from ..schedules.ztsnr import NOVELAI_TERMINAL_SIGMA, plain_sigmas_from_zero_terminal_snr, zero_terminal_snr_sigmas


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


def flow_shift_form(model_sampling) -> str | None:
    """How a flow model keeps its shift: "alpha" (ModelSamplingDiscreteFlow), "mu" (ModelSamplingFlux),
    or None for a model with no flow shift."""
    if isinstance(model_sampling, comfy.model_sampling.ModelSamplingFlux):
        return "mu"
    if isinstance(model_sampling, comfy.model_sampling.ModelSamplingDiscreteFlow):
        return "alpha"
    return None


def is_discrete(model_sampling) -> bool:
    """A DDPM-β model (SD1/SD2/SDXL kin) whose σ table the ZTSNR schedules and σ_max scaling read."""
    return (isinstance(model_sampling, comfy.model_sampling.ModelSamplingDiscrete)
            and not isinstance(model_sampling, comfy.model_sampling.ModelSamplingDiscreteEDM))


def flow_log_shift(model_sampling) -> float:
    """λ = ln α of a flow model's shift (μ itself on ModelSamplingFlux)."""
    return flow_shift.log_shift(float(model_sampling.shift), flow_shift_form(model_sampling))


def loader_flow_log_shift(model) -> float | None:
    """λ of the shift the loader configured (the family default, before any ModelSampling* node), or None."""
    # ModelPatcher leaves object patches on the shared model after sampling; the loader's object is then
    # in object_patches_backup (where get_model_object looks too).
    original = model.object_patches_backup.get("model_sampling", model.model.model_sampling)
    return flow_log_shift(original) if flow_shift_form(original) else None


def with_flow_shift_factor(model_sampling, factor: float):
    """A copy of a flow `model_sampling` whose every σ_VE = σ/(1 − σ) is `factor` × the input's: α·factor
    (ModelSamplingDiscreteFlow) or μ + ln factor (ModelSamplingFlux). Class, prediction type, multiplier,
    table length, noise scale and audio shift stay; the input is untouched."""
    form = flow_shift_form(model_sampling)
    patched = copy.deepcopy(model_sampling)
    new_shift = flow_shift.scaled_shift(float(model_sampling.shift), form, factor)
    # Rebuild the table through set_parameters, as ComfyUI's ModelSamplingSD3 / ModelSamplingFlux nodes do.
    parameters = dict(shift=new_shift, timesteps=len(model_sampling.sigmas))
    if form == "alpha":
        parameters["multiplier"] = model_sampling.multiplier
    if hasattr(model_sampling, "audio_shift"):  # ModelSamplingAV: the audio stream keeps its own shift
        parameters["audio_shift"] = model_sampling.audio_shift
    patched.set_parameters(**parameters)
    patched.snrt_flow_shift_factor = float(getattr(model_sampling, "snrt_flow_shift_factor", 1.0)) * factor
    return patched


def read_discrete_schedule(model_sampling, who: str) -> DiscreteSchedule:
    """The model's schedule, or an error naming why `who` cannot use this model."""
    if is_flow_model(model_sampling):
        raise SNRToolkitError(
            f"{who}: this is a flow-matching model (SD3, Flux and kin): its σ runs 0…1 with no DDPM betas, "
            "so there is no terminal SNR to rescale or σ_max to scale. For more noise at high resolution "
            "scale its shift with Scale σ_max by Resolution (or set it with ModelSamplingSD3 / ModelSamplingFlux).")
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


_SAMPLING_CLASSES: dict[type, type] = {}


def sampling_class(prediction: type) -> type:
    """ModelSamplingDiscrete + a prediction type, as ComfyUI's ModelSamplingDiscrete node builds it."""
    return _SAMPLING_CLASSES.setdefault(prediction, type(
        f"SNRT{prediction.__name__}Sampling", (comfy.model_sampling.ModelSamplingDiscrete, prediction), {}))


PREDICTIONS = {"v_prediction": comfy.model_sampling.V_PREDICTION, "eps": comfy.model_sampling.EPS}


def is_v_prediction(prediction: type) -> bool:
    return issubclass(prediction, comfy.model_sampling.V_PREDICTION)


def detected_prediction(model_sampling, who: str) -> type:
    """The prediction type the loader chose (EPS or V_PREDICTION), or an error for anything else."""
    if isinstance(model_sampling, comfy.model_sampling.V_PREDICTION):
        return comfy.model_sampling.V_PREDICTION
    if isinstance(model_sampling, comfy.model_sampling.X0):
        raise SNRToolkitError(f"{who}: the model predicts x0 (or is img2img-distilled); "
                              "choose prediction eps or v_prediction explicitly if that is wrong.")
    return comfy.model_sampling.EPS


def parameterisation(model_sampling) -> str | None:
    """What a model's network is trained to output, as the loss weights name it: "eps", "v" (discrete DDPM-β models),
    "flow" (rectified flow: the velocity), or None for anything else (EDM, x0, img2img, CogVideoX's v, …)."""
    if flow_shift_form(model_sampling) and type(model_sampling).calculate_denoised is comfy.model_sampling.CONST.calculate_denoised:
        return "flow"
    if is_discrete(model_sampling) and not isinstance(model_sampling, comfy.model_sampling.X0):
        if isinstance(model_sampling, comfy.model_sampling.V_PREDICTION):
            return "v"
        if isinstance(model_sampling, comfy.model_sampling.EPS):
            return "eps"
    return None


def snr_form(model_sampling) -> str | None:
    """How the model mixes signal and noise at σ, which fixes its SNR (ComfyUI's noise_scaling):
    "flow" for x = (1 − σ)·x₀ + σ·ε (rectified flow, CONST: SNR ((1 − σ)/σ)²), "sigma" for x = x₀ + σ·ε
    (discrete ε / v models, EDM and x0 kin of EPS; CogVideoX's v and Cosmos' RFlow add σ·ε too: SNR 1/σ²),
    None for a mixing this door does not know."""
    if parameterisation(model_sampling) == "flow" or isinstance(model_sampling, comfy.model_sampling.CONST):
        return "flow"
    sigma_mixing = tuple(cls for cls in (getattr(comfy.model_sampling, name, None) for name in
                                         ("EPS", "V_PREDICTION_DDPM", "COSMOS_RFLOW")) if isinstance(cls, type))
    if parameterisation(model_sampling) in ("eps", "v") or isinstance(model_sampling, sigma_mixing):
        return "sigma"
    return None


def prediction_sampling(model_config, schedule: DiscreteSchedule, prediction: type, terminal_sigma: float | None,
                        chosen_terminal_sigma: float | None):
    """(sampling object, σ table) for `prediction` on the model's plain table, rescaled to ZTSNR pinned at
    `terminal_sigma` (Lin et al. 2023) unless that is None; `chosen_terminal_sigma` is what the ztsnr_* schedulers
    start from (None: NovelAI's 20000)."""
    use_zsnr = terminal_sigma is not None
    table = zero_terminal_snr_sigmas(schedule.plain_sigmas, terminal_sigma) if use_zsnr else schedule.plain_sigmas
    return discrete_sampling(model_config, prediction, table, use_zsnr, chosen_terminal_sigma), table


def discrete_sampling(model_config, prediction: type, table: torch.Tensor, zsnr: bool, terminal_sigma):
    """A fresh discrete sampling object with this prediction type and σ table."""
    sampling = sampling_class(prediction)(model_config, zsnr=False)
    sampling.set_sigmas(table.float())
    sampling.zsnr = zsnr
    sampling.snrt_terminal_sigma = terminal_sigma
    return sampling


def contract_problems() -> list[str]:
    """Build a default SD sampling object and check what the pack reads and overrides still behaves."""
    import comfy.samplers
    found = []
    try:
        sampling = discrete_sampling(None, comfy.model_sampling.V_PREDICTION,
                                     comfy.model_sampling.ModelSamplingDiscrete(None).sigmas.double(), False, None)
    except Exception as error:  # noqa: BLE001 — any failure here is the finding
        return [f"ModelSamplingDiscrete + V_PREDICTION can no longer be built as (model_config, zsnr=...) with "
                f"set_sigmas ({type(error).__name__}: {error})"]
    for name in ("sigmas", "linear_start", "linear_end", "percent_to_sigma", "noise_scaling", "calculate_denoised"):
        if not hasattr(sampling, name):
            found.append(f"ModelSamplingDiscrete has no {name!r}")
    if not isinstance(getattr(type(sampling), "sigma_max", None), property):
        found.append("ModelSamplingDiscrete.sigma_max is no longer a property (Scale σ_max by Resolution overrides it)")
        return found
    scaled = with_sigma_hi_factor(sampling, 2.0)
    if abs(float(scaled.sigma_max) - 2 * float(sampling.sigma_max)) > 1e-3:
        found.append("the σ_max override on a copy of model_sampling is not read back")
    karras = comfy.samplers.calculate_sigmas(scaled, "karras", 4)
    if abs(float(karras[0]) - float(scaled.sigma_max)) > 1e-3 * float(scaled.sigma_max):
        found.append("the core karras scheduler no longer starts at model_sampling.sigma_max")
    return found + flow_contract_problems() + snr_contract_problems()


def snr_contract_problems() -> list[str]:
    """`snr_form` reads the mixing from the class: check that CONST still noises as (1 − σ)·x₀ + σ·ε and
    EPS (the discrete models' base) as x₀ + σ·ε, on a discrete and a flow object built as the loader does."""
    found = []
    sigma, noise, latent = torch.tensor([0.25]), torch.ones(1, 1, 1, 1), torch.full((1, 1, 1, 1), 2.0)
    for cls, base, form, expected in (
            (comfy.model_sampling.ModelSamplingDiscreteFlow, comfy.model_sampling.CONST, "flow", 0.25 + 0.75 * 2.0),
            (comfy.model_sampling.ModelSamplingDiscrete, comfy.model_sampling.EPS, "sigma", 0.25 + 2.0)):
        sampling = type(f"SNRTContract{base.__name__}", (cls, base), {})(None)
        if snr_form(sampling) != form:
            found.append(f"{cls.__name__} + {base.__name__} is no longer read as the {form!r} SNR form")
        mixed = float(sampling.noise_scaling(sigma, noise, latent, False).flatten()[0])
        if abs(mixed - expected) > 1e-6:
            found.append(f"{base.__name__}.noise_scaling no longer mixes as the {form!r} SNR form assumes "
                         f"(σ 0.25, noise 1, latent 2 gave {mixed}, not {expected})")
    return found


def _ve(sigmas: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    # σ_VE = σ/(1 − σ) where float32 still resolves 1 − σ well (σ < 0.99 in the reference table).
    sigmas = sigmas.double()[reference < 0.99]
    return sigmas / (1 - sigmas)


def flow_contract_problems() -> list[str]:
    """Build both flow sampling classes as the loader does, scale their shift ×2 and check that every
    σ_VE of the rebuilt table doubled, and that σ(t) is still the curve the shift is defined by."""
    found = []
    for base, start, form in ((comfy.model_sampling.ModelSamplingDiscreteFlow, 3.0, "alpha"),
                              (comfy.model_sampling.ModelSamplingFlux, 1.15, "mu")):
        name = base.__name__
        try:
            sampling = type(f"SNRTContract{name}", (base, comfy.model_sampling.CONST), {})(None)
            sampling.set_parameters(shift=start, timesteps=1000)
            scaled = with_flow_shift_factor(sampling, 2.0)
        except Exception as error:  # noqa: BLE001 — any failure here is the finding
            found.append(f"{name} can no longer be built with (model_config) and rebuilt with "
                         f"set_parameters(shift=, timesteps=) ({type(error).__name__}: {error})")
            continue
        if flow_shift_form(sampling) != form:
            found.append(f"{name} is no longer told apart by its class (expected the {form} form)")
            continue
        t = 0.25
        curve = flow_shift.shifted_time(t, start) if form == "alpha" else flow_shift.flux_time(t, start)
        timestep = t * sampling.multiplier if form == "alpha" else t
        if abs(float(sampling.sigma(torch.tensor(timestep))) - curve) > 1e-5:
            found.append(f"{name}.sigma(t) no longer follows the shift's curve (σ at t 0.25 is not {curve:.5f})")
        if not torch.allclose(_ve(scaled.sigmas, sampling.sigmas), 2 * _ve(sampling.sigmas, sampling.sigmas),
                              rtol=1e-4):
            found.append(f"{name}: scaling its shift no longer scales every σ/(1 − σ) of its table")
    return found
