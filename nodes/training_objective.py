"""SNRTTrainingObjective (MODEL): the training objective of NovelAI V3, Min-SNR, SD3 and the multi-resolution-noise
report for ComfyUI's own Train LoRA node; outside training the model samples exactly as its input."""
from __future__ import annotations

import logging

import torch
from comfy_api.latest import io

from ..errors import SNRToolkitError
from ..internals import require
from ..internals.model_sampling import (PREDICTIONS, detected_prediction, flow_shift_form, is_v_prediction,
                                        parameterisation, prediction_sampling, read_discrete_schedule)
from ..internals.supported_models import base_side_for
from ..internals.trainer import Objective, add_to
from ..samplers.loss_weighting import check_weighting
from ..samplers.timestep_sampling import MODE_SCALE_MAX, TimestepDensity, invert_decreasing
from ..samplers.training_noise import check_settings as check_noise
from ..schedules.flow_shift import shifted_time
from ..schedules.resolution import resolution_factor
from ..schedules.ztsnr import COMFYUI_TERMINAL_SIGMA
from .schema import advanced, schema

log = logging.getLogger("snr_toolkit")
WHO = "Training Objective"

OWN = "model's own"
WEIGHTINGS = {
    "trainer's own (x0 error)": "trainer",
    "model's standard (ε / v / flow velocity)": "standard",
    "Min-SNR-γ": "min_snr",
    "debiased estimation": "debiased",
    "SD3 sigma_sqrt": "sigma_sqrt",
    "SD3 cosmap": "cosmap",
}
DENSITIES = {"uniform (trainer's own)": "uniform", "logit-normal (SD3)": "logit_normal", "mode (SD3)": "mode"}
RANGE_UNITS = ["timestep (0–1000)", "sigma"]
PARAMETERISATION_NAMES = {"eps": "ε-prediction", "v": "v-prediction", "flow": "flow matching (velocity)"}


class SNRTTrainingObjective(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            search_aliases=["min snr", "minsnr", "loss weighting", "noise offset", "multires noise", "pyramid noise",
                            "ip noise gamma", "logit normal", "ztsnr training", "v-pred training", "train lora"],
            node_id="SNRTTrainingObjective",
            display_name="Training Objective (SNR)",
            category="model/training",
            description=(
                "Sets what ComfyUI's own Train LoRA node optimises, as kohya sd-scripts, musubi-tuner and diffusers do: "
                "loss weighting (the model's standard ε / v / velocity MSE, Min-SNR-γ, debiased estimation, SD3's "
                "sigma_sqrt and cosmap), timestep sampling (logit-normal and mode from SD3, a σ or timestep window, the "
                "resolution shift), training noise (offset, pyramid, input perturbation) and, on an ε SDXL, training "
                "towards v-prediction with Zero Terminal SNR as NovelAI V3 did. Connect it last, right before Train "
                "LoRA. Every input at its default leaves the trainer as it is; outside training the model samples "
                "exactly as its input. The loss Train LoRA logs (progress bar, loss_map, Plot Loss Graph) is the "
                "weighted objective set here."),
            inputs=[
                io.Model.Input("model", tooltip="The model Train LoRA trains. Not mutated: the output is a clone."),
                io.Combo.Input("loss_weighting", options=list(WEIGHTINGS), default=list(WEIGHTINGS)[0],
                               tooltip="Per-sample weight on the trainer's loss. trainer's own: ComfyUI's plain loss "
                               "on x0 (on an ε model ε-MSE × σ², neither kohya's nor diffusers' default). standard: "
                               "the MSE of what the model predicts: ε, v (Salimans & Ho) or the flow velocity (SD3, "
                               "Flux). Min-SNR-γ (Hang et al. 2023): kohya's min_snr_gamma, ε and v models. debiased "
                               "estimation (Yu et al. 2023): kohya's 1/√SNR (v: 1/(SNR+1)), ε and v models. SD3 "
                               "sigma_sqrt (σ⁻²) and cosmap: diffusers' SD3 weightings, flow models. The logged "
                               "loss is this weighted loss."),
                io.Float.Input("min_snr_gamma", default=5.0, min=0.0, max=100.0, step=0.1,
                               tooltip="γ of Min-SNR-γ: the weight is min(SNR, γ) on the x0 error (Hang et al. use 5; "
                               "NovelAI V3 trained with Min-SNR). Used by Min-SNR-γ only."),
                io.Combo.Input("timestep_sampling", options=list(DENSITIES), default=list(DENSITIES)[0],
                               tooltip="Where the trainer's noise levels fall. uniform: the trainer's own (uniform "
                               "timesteps). logit-normal and mode: Esser et al. 2024 (SD3), on the noise time t "
                               "(1 = pure noise) before the model's own shift. The trainer's random draws are kept, "
                               "only mapped, so a seed still gives the same run."),
                io.Float.Input("logit_mean", default=0.0, min=-5.0, max=5.0, step=0.01, **advanced(),
                               tooltip="m of logit-normal(m, s): > 0 trains more at high noise. diffusers' and kohya's "
                               "logit_mean count from the other end: theirs is −m here (the same at 0)."),
                io.Float.Input("logit_std", default=1.0, min=0.0, max=5.0, step=0.01, **advanced(),
                               tooltip="s of logit-normal(m, s), > 0; SD3 used logit-normal(0, 1)."),
                io.Float.Input("mode_scale", default=1.29, min=-1.0, max=round(MODE_SCALE_MAX, 4), step=0.01,
                               **advanced(), tooltip="s of SD3's mode sampling (1.29 in the paper; 0 = uniform), "
                               "between −1 and 2/(π−2) ≈ 1.75."),
                io.Combo.Input("range_unit", options=RANGE_UNITS, default=RANGE_UNITS[0], **advanced(),
                               tooltip="Unit of range_min / range_max. timestep: kohya's min_timestep / max_timestep, "
                               "0–1000 (for flow models timestep / 1000 is σ). sigma: the model's σ."),
                io.Float.Input("range_min", default=0.0, min=0.0, max=100000.0, step=0.001, **advanced(),
                               tooltip="Train only at noise levels from here (inclusive). The chosen density is cut to "
                               "the window, its shape kept (musubi-tuner's preserve_distribution_shape; for uniform "
                               "sampling the same as kohya's min/max_timestep)."),
                io.Float.Input("range_max", default=1000.0, min=0.0, max=100000.0, step=0.001, **advanced(),
                               tooltip="…up to here. Defaults 0–1000 timesteps: the whole schedule. A bound past the "
                               "model's own σ range does not cut."),
                io.Int.Input("shift_width", default=0, min=0, max=16384, step=8, **advanced(),
                             tooltip="Flow models: resolution shift of the noise time for a canvas of shift_width × "
                             "shift_height pixels (Esser et al. 2024 §5.3.2, the pack's Scale σ_max by Resolution "
                             "rule: the shift × √(w·h) / the family's base side, on top of the model's own shift). "
                             "0 = off."),
                io.Int.Input("shift_height", default=0, min=0, max=16384, step=8, **advanced(),
                             tooltip="Height of that canvas in pixels; 0 = off."),
                io.Float.Input("noise_offset", default=0.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Offset noise (Guttenberg 2023; kohya noise_offset): adds strength × N(0, 1) per "
                               "sample and channel to the training noise, so the model learns to change the mean "
                               "colour. 0.1 is usual."),
                io.Float.Input("adaptive_noise_offset", default=0.0, min=-1.0, max=1.0, step=0.01, **advanced(),
                               tooltip="kohya's adaptive_noise_scale: the offset grows by this × |the sample's "
                               "per-channel latent mean| (clamped at 0). Needs noise_offset."),
                io.Int.Input("pyramid_iterations", default=0, min=0, max=16,
                             tooltip="Pyramid (multi-resolution) noise on the training noise (Whitaker 2023; kohya "
                             "multires_noise_iterations, 6–10): the same levels as the Pyramid Noise node, so training "
                             "and sampling share one spectrum. 0 = off."),
                io.Float.Input("pyramid_discount", default=0.3, min=0.0, max=0.99, step=0.01,
                               tooltip="Weight discountⁱ of pyramid level i (kohya multires_noise_discount 0.3; the "
                               "report used 0.8, later 0.5)."),
                io.Float.Input("ip_noise_gamma", default=0.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Input perturbation (Ning et al. 2023; kohya ip_noise_gamma, 0.1): the input is "
                               "noised with ε + γ·ξ while the target stays the model's own target for ε. 0 = off."),
                io.Combo.Input("prediction", options=[OWN, "v_prediction", "eps"], default=OWN,
                               tooltip="Train the network as this prediction type (SD1/SD2/SDXL models). v_prediction "
                               "on an ε checkpoint is NovelAI V3's conversion; sample the trained LoRA with "
                               "V-Prediction / ZTSNR set the same way. model's own: as the loader set it."),
                io.Combo.Input("zsnr", options=[OWN, "on", "off"], default=OWN,
                               tooltip="Zero Terminal SNR in the training schedule (Lin et al. 2023; NovelAI V3): the "
                               "top timestep is pure noise (ComfyUI's table, σ 4518.76). Needs v_prediction: at SNR 0 an "
                               "ε model's x0 is undefined."),
            ],
            outputs=[io.Model.Output(tooltip="A clone that trains with this objective inside Train LoRA and samples "
                                     "exactly as the input everywhere else.")],
        )

    @classmethod
    def execute(cls, model, loss_weighting, min_snr_gamma, timestep_sampling, logit_mean, logit_std, mode_scale,
                range_unit, range_min, range_max, shift_width, shift_height, noise_offset, adaptive_noise_offset,
                pyramid_iterations, pyramid_discount, ip_noise_gamma, prediction, zsnr) -> io.NodeOutput:
        weighting, density_name = WEIGHTINGS[loss_weighting], DENSITIES[timestep_sampling]
        shift_on = bool(shift_width or shift_height)
        window = (range_unit != RANGE_UNITS[0] or range_min != 0.0 or range_max != 1000.0)
        converts = prediction != OWN or zsnr != OWN
        if not (weighting != "trainer" or density_name != "uniform" or window or shift_on or noise_offset
                or adaptive_noise_offset or pyramid_iterations or ip_noise_gamma or converts):
            return io.NodeOutput(model)  # the trainer's own objective: nothing to change
        require("trainer", WHO)
        require("model_sampling", WHO)
        model_sampling = model.get_model_object("model_sampling")
        kind = parameterisation(model_sampling)
        if kind is None:
            raise SNRToolkitError(
                f"{WHO}: this MODEL samples with {type(model_sampling).__name__}, neither a discrete ε / v diffusion "
                "model (SD1, SD2, SDXL) nor a flow-matching model (SD3, Flux, Wan, …), so its SNR and targets are "
                "unknown here. Leave every input at its default to train it with the trainer's own objective.")
        training_sampling = None
        if converts:
            kind, training_sampling = training_prediction(model, model_sampling, kind, prediction, zsnr)
        try:
            check_weighting(weighting, kind, min_snr_gamma)
            check_noise(noise_offset, adaptive_noise_offset, pyramid_iterations, pyramid_discount, ip_noise_gamma)
            density = TimestepDensity(density_name, logit_mean, logit_std, mode_scale)
        except ValueError as error:
            raise SNRToolkitError(f"{WHO}: {error} ({PARAMETERISATION_NAMES[kind]} model). {fix_for(error)}") from None
        alpha = 1.0
        if shift_on:
            alpha = resolution_shift(model, model_sampling, shift_width, shift_height)
        base = training_sampling if training_sampling is not None else model_sampling
        if window:
            density = windowed(density, alpha, base, kind, range_unit, range_min, range_max)
        objective = Objective(
            parameterisation=kind, weighting=weighting, gamma=min_snr_gamma,
            noise_scale=float(getattr(model_sampling, "noise_scale", 1.0)) if kind == "flow" else 1.0,
            density=density, shift_alpha=alpha, offset=noise_offset, adaptive_offset=adaptive_noise_offset,
            pyramid_iterations=pyramid_iterations, pyramid_discount=pyramid_discount, ip_gamma=ip_noise_gamma)
        log.info("%s: %s, weighting %s, timesteps %s, noise offset %g, pyramid %d × %g, ip γ %g", WHO,
                 PARAMETERISATION_NAMES[kind], weighting, density_name, noise_offset, pyramid_iterations,
                 pyramid_discount, ip_noise_gamma)
        return io.NodeOutput(add_to(model, objective, training_sampling))


def fix_for(error: ValueError) -> str:
    text = str(error)
    if "flow-matching" in text:
        return "On an SD1/SD2/SDXL model use standard, Min-SNR-γ or debiased estimation."
    if "ε- and v-prediction" in text:
        return "On a flow model use standard (velocity), SD3 sigma_sqrt or SD3 cosmap."
    return "Change that input, or set it back to its default."


def training_prediction(model, model_sampling, kind, prediction, zsnr):
    """(parameterisation, training sampling object) for the prediction / zsnr inputs (discrete models only)."""
    if kind == "flow":
        raise SNRToolkitError(f"{WHO}: prediction and zsnr are ε / v options of SD1/SD2/SDXL models; a flow-matching "
                              "model predicts the velocity on σ in [0, 1] and has no terminal SNR to rescale. Set both "
                              f"to {OWN!r}.")
    schedule = read_discrete_schedule(model_sampling, WHO)
    prediction_type = PREDICTIONS.get(prediction) or detected_prediction(model_sampling, WHO)
    use_zsnr = {OWN: schedule.zsnr, "on": True, "off": False}[zsnr]
    if use_zsnr and not is_v_prediction(prediction_type):
        raise SNRToolkitError(f"{WHO}: ZTSNR needs v-prediction. At SNR 0 the noisy input holds no signal, so an ε "
                              "model's x0 = x − σε is undefined there (Lin et al. 2023; NovelAI V3 converted SDXL to "
                              "v-prediction for this). Set prediction to v_prediction, or zsnr off.")
    sampling, _ = prediction_sampling(model.model.model_config, schedule, prediction_type,
                                      COMFYUI_TERMINAL_SIGMA if use_zsnr else None, None)
    return ("v" if is_v_prediction(prediction_type) else "eps"), sampling


def resolution_shift(model, model_sampling, width, height) -> float:
    """α = √(w·h) / base side for the flow model's family (Esser et al. 2024 §5.3.2)."""
    if not flow_shift_form(model_sampling):
        raise SNRToolkitError(f"{WHO}: the resolution shift moves a flow model's noise time; this model has a DDPM "
                              "schedule. Set shift_width and shift_height to 0 (for SDXL at high resolution train "
                              "with ZTSNR, and sample with Scale σ_max by Resolution).")
    if not (width and height):
        raise SNRToolkitError(f"{WHO}: the resolution shift needs both shift_width and shift_height (pixels of the "
                              f"training images); got {width} × {height}.")
    return resolution_factor(width, height, base_side_for(model, WHO))


def windowed(density: TimestepDensity, alpha: float, base, kind: str, unit: str, low: float, high: float):
    """The density cut to the noise levels [low, high] (timesteps 0–1000 or σ)."""
    if not high > low:
        raise SNRToolkitError(f"{WHO}: the training window {low:g}–{high:g} is empty or inverted; range_min must be "
                              "below range_max.")
    if unit == RANGE_UNITS[0]:
        if high > 1000.0:
            raise SNRToolkitError(f"{WHO}: timesteps run 0–1000; range_max {high:g} is beyond. Use the sigma unit "
                                  "for σ bounds.")
        sigma_low, sigma_high = timestep_sigma(base, kind, low), timestep_sigma(base, kind, high)
    else:
        sigma_low, sigma_high = low, high

    def sigma_of(p: float) -> float:
        t = density.time(p)
        return float(base.percent_to_sigma(1.0 - (shifted_time(t, alpha) if alpha != 1.0 else t)))

    top, bottom = sigma_of(1e-9), sigma_of(1.0 - 1e-9)
    if sigma_low >= top or sigma_high <= bottom:
        raise SNRToolkitError(f"{WHO}: the window σ {sigma_low:.4g}–{sigma_high:.4g} lies outside the noise levels "
                              f"this model trains at (σ {bottom:.4g}–{top:.4g}); widen it or change its unit.")
    p_upper = 0.0 if sigma_high >= top else invert_decreasing(sigma_of, sigma_high)
    p_lower = 1.0 if sigma_low <= bottom else invert_decreasing(sigma_of, sigma_low)
    return density.windowed(p_upper, p_lower)


def timestep_sigma(base, kind: str, timestep: float) -> float:
    """σ at a timestep on kohya's 0–1000 scale: the model's table for discrete models, timestep / 1000 for flow."""
    if kind == "flow":
        return timestep / 1000.0
    if timestep >= 1000.0:
        return float("inf")
    return float(base.sigma(torch.tensor(float(timestep))))
