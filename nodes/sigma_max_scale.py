"""SNRTSigmaMaxScale (MODEL): NovelAI V3's σ_max × (canvas side / training side); on flow-matching models
the same factor on the shift, the SD3 paper's resolution-dependent timestep shift."""
from __future__ import annotations

import logging
import math

from comfy_api.latest import io

from ..errors import SNRToolkitError
from ..internals import require
from ..internals.model_sampling import (flow_log_shift, flow_shift_form, is_discrete, loader_flow_log_shift,
                                        read_discrete_schedule, with_flow_shift_factor, with_sigma_hi_factor)
from ..internals.supported_models import FAMILY_RULES, base_side_for, model_family, pixels_per_latent_cell
from ..schedules.flow_shift import FLUX2_DEFAULT_STEPS, family_rule_mu, shift_from_log
from ..schedules.resolution import UNVERIFIED_BASE, latent_pixel_size, latent_tokens, resolution_factor
from .schema import advanced, schema

log = logging.getLogger("snr_toolkit")

RULE_SQRT = "√ pixels (SD3 paper, NovelAI)"
RULE_FAMILY = "family's own (ComfyUI)"
RULES = [RULE_SQRT, RULE_FAMILY]


class SNRTSigmaMaxScale(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            search_aliases=["sigma max", "resolution", "hires", "novelai", "shift", "flow shift", "sd3 shift"],
            node_id="SNRTSigmaMaxScale",
            display_name="Scale σ_max by Resolution",
            category="advanced/model",
            description=(
                "NovelAI V3 (arXiv 2409.15997): a larger canvas needs more noise to destroy its low frequencies; "
                "when the side doubles, σ_max should double. Multiplies the model's σ_max by √(w·h) / base side. "
                "Core karras, exponential and kl_optimal (and ComfyUI's max-denoise noise scaling) follow the new "
                "σ_max; the ztsnr_* schedulers scale their σ_hi. On a ZTSNR model σ_max is already ∞ (the terminal "
                "σ), so only the ztsnr_* σ_hi changes. Flow-matching models (SD3, Flux, Wan, Qwen-Image, LTX-Video "
                "and kin): the SD3 paper's resolution shift (Esser et al. 2024, arXiv 2403.03206 §5.3.2), the same "
                "factor on σ/(1−σ): the model's shift α × factor (Flux-type μ + ln factor), composed with any shift "
                "set upstream; or the family's own ComfyUI rule (Flux, Flux 2, LTX-Video)."),
            inputs=[
                io.Model.Input("model", tooltip="A discrete-timestep model (SD1/SD2/SDXL family) or a flow-matching "
                               "model (SD3, Flux, Wan, …). Not mutated."),
                io.Int.Input("width", default=1024, min=1, max=16384, step=8,
                             tooltip="Canvas width in pixels (ignored when a latent is connected)."),
                io.Int.Input("height", default=1024, min=1, max=16384, step=8,
                             tooltip="Canvas height in pixels (ignored when a latent is connected)."),
                io.Int.Input("base_side", **advanced(), default=0, min=0, max=16384, step=8,
                             tooltip="Training resolution side in pixels, √(w·h) of the canvas the model's σ_max or "
                             "shift belongs to; 0 = by model family (SD1 512, SD2 768, SDXL, SD3 and Flux 1024, "
                             "Wan 2.1 960 = 1280×720, LTX-Video 627 = 768×512; table and sources in docs/flow-shift.md). "
                             "Unverified, as no published config ties a canvas to the shift ComfyUI sets (set "
                             "base_side if you know it): " + ", ".join(UNVERIFIED_BASE) + "."),
                io.Latent.Input("latent", optional=True,
                                tooltip="Take width and height from this latent, per frame for video (one cell is "
                                "the model's VAE downscale: 8 pixels for SD, SD3, Flux, Wan 2.1; 16 for Flux 2 and "
                                "Wan 2.2 5B; 32 for LTX-Video)."),
                io.Combo.Input("rule", options=RULES, default=RULE_SQRT, optional=True,
                               tooltip="How the shift follows the canvas on flow models. √ pixels: factor √(w·h) / "
                               "base side, the SD3 paper's rule and NovelAI's. family's own: ComfyUI's token-count "
                               "rule for Flux (ModelSamplingFlux), Flux 2 (Flux2Scheduler, at the steps below) and "
                               "LTX-Video (ModelSamplingLTXV, needs the latent); it grows faster above the base canvas."),
                io.Int.Input("steps", **advanced(), default=FLUX2_DEFAULT_STEPS, min=1, max=4096, optional=True,
                             tooltip="Flux 2's own rule only (its μ depends on the step count, as in ComfyUI's "
                             "Flux2Scheduler): the steps of the schedule you sample with, i.e. the scheduler's or "
                             "KSampler's steps at denoise 1. Ignored by every other model and by √ pixels."),
            ],
            outputs=[io.Model.Output(tooltip="A clone whose σ_max is σ_max × √(w·h) / base side, or, on a flow "
                                     "model, whose shift is scaled by that factor (or set by the family's rule).")],
        )

    @classmethod
    def execute(cls, model, width, height, base_side, latent=None, rule=RULE_SQRT,
                steps=FLUX2_DEFAULT_STEPS) -> io.NodeOutput:
        who = "Scale σ_max by Resolution"
        require("model_sampling", who)
        model_sampling = model.get_model_object("model_sampling")
        if flow_shift_form(model_sampling):
            return io.NodeOutput(scale_flow_model(model, model_sampling, width, height, base_side, latent, rule, who,
                                                  steps))
        if not is_discrete(model_sampling):
            raise SNRToolkitError(
                f"{who}: this model samples with {type(model_sampling).__name__}, which has neither a DDPM β table "
                "(a σ_max to scale) nor a flow shift. For more noise on a larger canvas raise its sigma_max by "
                "√(w·h) / training side with ModelSamplingContinuousEDM (or its family's sampling node) instead.")
        if rule != RULE_SQRT:
            raise SNRToolkitError(
                f"{who}: rule {rule!r} exists for flow models only (Flux, Flux 2, LTX-Video); on this "
                f"{model_family(model)} model choose {RULE_SQRT!r}, NovelAI's σ_max rule.")
        schedule = read_discrete_schedule(model_sampling, who)
        if latent is not None:
            width, height = latent_pixel_size(latent)
        factor = resolution_factor(width, height, base_side or base_side_for(model, who))
        patched = model.clone()
        patched.add_object_patch("model_sampling", with_sigma_hi_factor(model_sampling, factor))
        if schedule.zsnr:
            log.info("%s: ZTSNR model, σ_max stays the terminal %.2f; ztsnr_* σ_hi = %.4f (×%.4f)", who,
                     schedule.model_terminal_sigma, schedule.plain_sigma_max * factor, factor)
        else:
            log.info("%s: σ_max %.4f → %.4f (×%.4f for %d×%d)", who, schedule.plain_sigma_max,
                     schedule.plain_sigma_max * factor, factor, width, height)
        return io.NodeOutput(patched)


def scale_flow_model(model, model_sampling, width, height, base_side, latent, rule, who, steps=FLUX2_DEFAULT_STEPS):
    """A clone whose flow shift follows the canvas: every σ/(1−σ) × the rule's factor."""
    family = model_family(model)
    if latent is not None:
        width, height = latent_pixel_size(latent, pixels_per_latent_cell(model))
    form = flow_shift_form(model_sampling)
    before = flow_log_shift(model_sampling)
    if rule == RULE_SQRT:
        side = base_side or base_side_for(model, who)
        factor = resolution_factor(width, height, side)
        how = f"√ pixels, base side {side:.0f}" + (f" (unverified for {family})" if not base_side and
                                                    family in UNVERIFIED_BASE else "")
    else:
        factor, how = family_rule_factor(model, family, width, height, latent, who, steps)
    patched = model.clone()
    patched.add_object_patch("model_sampling", with_flow_shift_factor(model_sampling, factor))
    name = "μ" if form == "mu" else "shift"
    log.info("%s: %s flow model, %s %.4f → %.4f (σ/(1−σ) ×%.4f; %s; %d×%d)", who, family, name,
             shift_from_log(before, form), shift_from_log(before + math.log(factor), form), factor, how,
             width, height)
    return patched


def family_rule_factor(model, family, width, height, latent, who, steps=FLUX2_DEFAULT_STEPS):
    """The σ_VE factor that moves the model's shift along its family's ComfyUI rule, from the family's
    configured shift (the rule's value at its base canvas) to the rule's value at this canvas (Flux 2's at
    `steps` steps, as Flux2Scheduler computes it); a shift set upstream keeps its offset from the configured one."""
    own = FAMILY_RULES.get(family)
    if own is None:
        raise SNRToolkitError(
            f"{who}: ComfyUI has no resolution rule of its own for {family} models (only for "
            f"{', '.join(FAMILY_RULES)}); choose rule {RULE_SQRT!r}.")
    tokens = latent_tokens(latent) if latent is not None else None
    if own == "ltxv" and tokens is None:
        raise SNRToolkitError(f"{who}: LTX-Video's own rule counts latent tokens across frames; connect the "
                              "video latent (or choose rule '√ pixels', which needs only the frame size).")
    target = family_rule_mu(own, width, height, tokens, steps)
    configured = loader_flow_log_shift(model)
    at = f" at {steps} steps" if own == "flux2" else ""
    return math.exp(target - configured), f"{family}'s rule μ {target:.4f}{at} against configured {configured:.4f}"
