"""SNRTSigmaMaxScale (MODEL): NovelAI V3's σ_max × (canvas side / training side)."""
from __future__ import annotations

import logging

from comfy_api.latest import io

from ..internals import require
from ..internals.model_sampling import read_discrete_schedule, with_sigma_hi_factor
from ..internals.supported_models import base_side_for
from ..schedules.resolution import latent_pixel_size, resolution_factor
from .schema import advanced, schema

log = logging.getLogger("snr_toolkit")


class SNRTSigmaMaxScale(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            search_aliases=["sigma max", "resolution", "hires", "novelai"],
            node_id="SNRTSigmaMaxScale",
            display_name="Scale σ_max by Resolution",
            category="advanced/model",
            description=(
                "NovelAI V3 (arXiv 2409.15997): a larger canvas needs more noise to destroy its low frequencies; "
                "when the side doubles, σ_max should double. Multiplies the model's σ_max by √(w·h) / base side. "
                "Core karras, exponential and kl_optimal (and ComfyUI's max-denoise noise scaling) follow the new "
                "σ_max; the ztsnr_* schedulers scale their σ_hi. On a ZTSNR model σ_max is already ∞ (the terminal "
                "σ), so only the ztsnr_* σ_hi changes. Flow models (SD3, Flux) are refused: raise their shift."),
            inputs=[
                io.Model.Input("model", tooltip="A discrete-timestep model (SD1/SD2/SDXL family). Not mutated."),
                io.Int.Input("width", default=1024, min=1, max=16384, step=8,
                             tooltip="Canvas width in pixels (ignored when a latent is connected)."),
                io.Int.Input("height", default=1024, min=1, max=16384, step=8,
                             tooltip="Canvas height in pixels (ignored when a latent is connected)."),
                io.Int.Input("base_side", **advanced(), default=0, min=0, max=16384, step=8,
                             tooltip="Training resolution side in pixels; 0 = by model family (SD1 512, SD2 768, "
                             "SDXL 1024)."),
                io.Latent.Input("latent", optional=True,
                                tooltip="Take width and height from this latent (8 pixels per latent cell)."),
            ],
            outputs=[io.Model.Output(tooltip="A clone whose σ_max is σ_max × √(w·h) / base side.")],
        )

    @classmethod
    def execute(cls, model, width, height, base_side, latent=None) -> io.NodeOutput:
        who = "Scale σ_max by Resolution"
        require("model_sampling", who)
        model_sampling = model.get_model_object("model_sampling")
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
