"""SNRTScheduler (SIGMAS) and the same schedules as `ztsnr_*` names in the KSampler dropdown."""
from __future__ import annotations

import logging
from functools import partial

import torch

from comfy_api.latest import io

from ..errors import SNRToolkitError
from ..internals import scheduler_registry
from ..internals.model_sampling import default_terminal_sigma, read_discrete_schedule
from ..internals.supported_models import base_side_for
from ..schedules.resolution import latent_pixel_size, resolution_factor
from ..schedules.schedule import denoise_total_steps, last_steps, ztsnr_schedule
from ..schedules.shapes import SHAPES
from ..schedules.ztsnr import NOVELAI_TERMINAL_SIGMA
from .schema import advanced, schema

log = logging.getLogger("snr_toolkit")

TERMINAL_INFINITE = "infinite (20000)"
TERMINAL_MODEL = "model"
TERMINAL_NONE = "none"
TERMINAL_CHOICES = [TERMINAL_INFINITE, TERMINAL_MODEL, TERMINAL_NONE]

#: Shapes offered in the KSampler dropdown (SNRTScheduler offers every shape).
KSAMPLER_SHAPES = ["exponential", "karras", "beta", "kl_optimal", "normal", "simple"]
KSAMPLER_SCHEDULER_NAMES = [f"ztsnr_{shape}" for shape in KSAMPLER_SHAPES]

#: Defaults settled by benchmarks/schedule_quality.py (docs/samplers.md, "Choosing the defaults"). Starting the
#: shape at the plain σ_max (14.6146) jumps from the terminal σ straight past the noise levels where
#: composition and mean colour are decided (σ ≈ 50–300 at 1024², growing with the side); σ_hi 400 at
#: the training resolution covers them, and exponential spacing keeps the most steps for detail.
DEFAULT_SHAPE = "exponential"
DEFAULT_SIGMA_HI_BASE = 400.0


def _require_zsnr(schedule, who: str) -> None:
    if not schedule.zsnr:
        raise SNRToolkitError(
            f"{who}: the model is not Zero Terminal SNR, so it never learned to denoise from σ above "
            f"{schedule.plain_sigma_max:.4g}; a terminal step would ruin the image. If the checkpoint was "
            "trained with ZTSNR, put 'V-Prediction / ZTSNR' (zsnr on) before this; otherwise use terminal "
            "'none' here, or core karras after 'Scale σ_max by Resolution'.")


def ksampler_schedule(shape: str, model_sampling, steps: int):
    """Handler behind `ztsnr_<shape>`: σ₀ = terminal, then the shape from SNRTScheduler's default
    σ_hi base × the model's resolution factor (SNRTSigmaMaxScale) down to σ_min, then 0."""
    who = f"scheduler ztsnr_{shape}"
    schedule = read_discrete_schedule(model_sampling, who)
    _require_zsnr(schedule, who)
    sigma_hi = DEFAULT_SIGMA_HI_BASE * schedule.sigma_hi_factor
    return ztsnr_schedule(shape, steps, sigma_hi, schedule.sigma_min, default_terminal_sigma(schedule),
                          schedule.plain_sigmas)


def register_ksampler_schedulers() -> bool:
    """Add the ztsnr_* names to ComfyUI's scheduler registry (in place, idempotently)."""
    return scheduler_registry.register({name: partial(ksampler_schedule, shape)
                                        for name, shape in zip(KSAMPLER_SCHEDULER_NAMES, KSAMPLER_SHAPES)})


class SNRTScheduler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            search_aliases=["ztsnr", "zero terminal snr", "noobai", "v-pred scheduler", "novelai"],
            node_id="SNRTScheduler",
            display_name="ZTSNR Scheduler",
            category="sampling/custom_sampling/schedulers",
            description=(
                "Sigmas for a Zero Terminal SNR model (Lin et al. 2023; NovelAI V3): one step from the terminal σ "
                "(pure noise) to σ_hi, then the chosen shape from σ_hi down to the model's σ_min, then 0. "
                "σ_hi = base × √(w·h)/base side when a latent is given (NovelAI: double the side, double σ_max), "
                "else base × the factor set by 'Scale σ_max by Resolution'. Measured on an exact model "
                "(docs/samplers.md, sampler survey): every KSampler sampler stays finite on the jump from σ 20000. For detail prefer dpmpp_2m, "
                "uni_pc, ipndm, dpm_2, heun or dpmpp_2m_sde; euler and the ancestral samplers leave more noise at 28 "
                "steps. Avoid dpm_adaptive (it ignores the schedule) and lcm (for distilled models)."),
            inputs=[
                io.Model.Input("model", tooltip="A discrete-timestep model (SD1/SD2/SDXL family). Terminal modes "
                               "'infinite' and 'model' need a ZTSNR model (loader-detected or V-Prediction / ZTSNR)."),
                io.Int.Input("steps", default=28, min=1, max=10000,
                             tooltip="Model calls. The terminal step counts as one; the shape gets the rest."),
                io.Combo.Input("shape", options=list(SHAPES), default=DEFAULT_SHAPE,
                               tooltip="How the sigmas below σ_hi are spaced. beta/simple/normal/sgm_uniform follow "
                               "the model's own timestep table stretched to σ_hi; the others are formulas in σ."),
                io.Combo.Input("terminal", options=TERMINAL_CHOICES, default=TERMINAL_INFINITE,
                               tooltip="First sigma. 'infinite (20000)': NovelAI's practical ∞. 'model': the "
                               "model's own terminal σ (4518.76 for ComfyUI's ZTSNR pin). 'none': no terminal "
                               "step, start at σ_hi (any discrete model)."),
                io.Float.Input("sigma_hi_base", **advanced(), default=DEFAULT_SIGMA_HI_BASE, min=0.01, max=10000.0, step=0.1,
                               round=False, tooltip="σ_hi at the model's training resolution, where the shape "
                               "starts after the terminal step. Higher spends more steps on composition and mean "
                               "colour, lower on detail; 14.6146 is SD/SDXL's plain σ_max. The default 400 was "
                               "chosen by the schedule-quality benchmark."),
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Below 1 keeps only the last part of a longer schedule, as ComfyUI's "
                               "BasicScheduler does (img2img, hires second pass)."),
                io.Latent.Input("latent", optional=True,
                                tooltip="Scale σ_hi by this latent's canvas (√(w·h) / the family's base side: "
                                "SD1 512, SD2 768, SDXL 1024). Overrides the model's 'Scale σ_max by Resolution'."),
            ],
            outputs=[io.Sigmas.Output(tooltip="steps + 1 sigmas (fewer with denoise < 1), last 0.")],
        )

    @classmethod
    def execute(cls, model, steps, shape, terminal, sigma_hi_base, denoise, latent=None) -> io.NodeOutput:
        who = "ZTSNR Scheduler"
        schedule = read_discrete_schedule(model.get_model_object("model_sampling"), who)
        factor = schedule.sigma_hi_factor
        if latent is not None:
            width, height = latent_pixel_size(latent)
            latent_factor = resolution_factor(width, height, base_side_for(model, who))
            if factor != 1.0 and abs(latent_factor - factor) > 1e-9:
                log.warning("%s: the latent (%d×%d) sets the resolution factor to %.4f, overriding %.4f from "
                            "'Scale σ_max by Resolution'", who, width, height, latent_factor, factor)
            factor = latent_factor
        if terminal == TERMINAL_NONE:
            terminal_sigma = None
        else:
            _require_zsnr(schedule, f"{who} (terminal '{terminal}')")
            terminal_sigma = NOVELAI_TERMINAL_SIGMA if terminal == TERMINAL_INFINITE else schedule.model_terminal_sigma
        total_steps = denoise_total_steps(steps, denoise)
        if total_steps == 0:
            return io.NodeOutput(torch.zeros(0))  # nothing to denoise, as BasicScheduler
        sigmas = ztsnr_schedule(shape, total_steps, sigma_hi_base * factor, schedule.sigma_min, terminal_sigma,
                                schedule.plain_sigmas)
        return io.NodeOutput(last_steps(sigmas, steps))
