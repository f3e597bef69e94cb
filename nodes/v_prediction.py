"""SNRTVPrediction (MODEL): v-prediction and Zero Terminal SNR sampling for SD-family models."""
from __future__ import annotations

import logging

from comfy_api.latest import io

from ..errors import SNRToolkitError
from ..internals import require
from ..internals.cfg import WrappersMP
from ..internals.model_sampling import (PREDICTIONS, detected_prediction, is_v_prediction, prediction_sampling,
                                        read_discrete_schedule, with_sigma_hi_factor)
from ..schedules.ztsnr import COMFYUI_TERMINAL_SIGMA, NOVELAI_TERMINAL_SIGMA
from .schema import schema

log = logging.getLogger("snr_toolkit")

TERMINAL_SIGMAS = {
    f"NovelAI ({NOVELAI_TERMINAL_SIGMA:.0f})": NOVELAI_TERMINAL_SIGMA,
    f"ComfyUI ({COMFYUI_TERMINAL_SIGMA:.2f})": COMFYUI_TERMINAL_SIGMA,
}
SKIP_CFG_WRAPPER_KEY = "snr_toolkit_skip_cfg_terminal_step"


def skip_uncond_above(sigma_threshold: float):
    """CALC_COND_BATCH wrapper: above the threshold run the cond pass only and hand it back as the
    uncond too, so CFG returns the conditional prediction (A1111's skip_early_cond idea)."""
    def wrapper(executor, model, conds, x_in, timestep, model_options):
        if len(conds) == 2 and conds[1] is not None and float(timestep.max()) > sigma_threshold:
            out = executor(model, [conds[0], None], x_in, timestep, model_options)
            return [out[0], out[0]]
        return executor(model, conds, x_in, timestep, model_options)
    return wrapper


def configure_sampling(model, schedule, prediction_type: type, terminal_sigma: float | None,
                       chosen_terminal_sigma: float | None):
    """A clone of `model` sampling with `prediction_type`, on a ZTSNR table pinned at `terminal_sigma` (Lin et
    al. 2023) or, when None, the plain table; the resolution factor of `schedule` is kept. Returns (clone, table).
    `chosen_terminal_sigma` is what the ztsnr_* schedulers start from (None: NovelAI's 20000)."""
    sampling, table = prediction_sampling(model.model.model_config, schedule, prediction_type, terminal_sigma,
                                          chosen_terminal_sigma)
    if schedule.sigma_hi_factor != 1.0:
        sampling = with_sigma_hi_factor(sampling, schedule.sigma_hi_factor)
    patched = model.clone()
    patched.add_object_patch("model_sampling", sampling)
    return patched, table


class SNRTVPrediction(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            search_aliases=["v_pred", "ztsnr", "zsnr", "model sampling discrete", "noobai"],
            node_id="SNRTVPrediction",
            display_name="V-Prediction / ZTSNR",
            category="advanced/model",
            description=(
                "Sets how a discrete SD-family model is sampled: ε or v prediction (Salimans & Ho 2022), with or "
                "without Zero Terminal SNR (Lin et al. 2023), whose last step is pure noise so the model can make "
                "truly dark or bright images (NovelAI V3). 'auto' keeps what the model samples with now: what "
                "Load Checkpoint read from the checkpoint's v_pred / ztsnr keys, or what Load Checkpoint (reads "
                "training metadata) decided from those keys and the file's metadata. Never force ZTSNR on a "
                "checkpoint not trained with it: the image burns."),
            inputs=[
                io.Model.Input("model", tooltip="SD1/SD2/SDXL-family model. Not mutated: the output is a clone."),
                io.Combo.Input("prediction", options=["auto", "v_prediction", "eps"], default="auto",
                               tooltip="What the network outputs. auto: keep what the loader set: Load Checkpoint "
                               "reads only the v_pred key (no key: eps); Load Checkpoint (reads training metadata) "
                               "also reads modelspec / kohya metadata and reports which source won."),
                io.Combo.Input("zsnr", options=["auto", "on", "off"], default="auto",
                               tooltip="Zero Terminal SNR. auto: keep what the loader set: the ztsnr key (as on "
                               "NoobAI-XL V-Pred) with Load Checkpoint, the key or ss_zero_terminal_snr metadata "
                               "with Load Checkpoint (reads training metadata). on: force it — only for checkpoints "
                               "trained with ZTSNR; on a v-pred model that neither marks as ZTSNR this logs a "
                               "warning, and if the model was not trained for it the image burns. Needs v_prediction."),
                io.Combo.Input("terminal_sigma", options=list(TERMINAL_SIGMAS), default=list(TERMINAL_SIGMAS)[0],
                               tooltip="Finite stand-in for the terminal σ = ∞ in the model's table: NovelAI sampled "
                               "from σ 20000 (default; also what the ztsnr_* schedulers use on a model without "
                               "this node); ComfyUI/A1111 pin ᾱ_T = 4.9e-8 (σ 4518.76). The ztsnr_* schedulers "
                               "start here, and so do core schedulers on a ZTSNR model."),
                io.Boolean.Input("skip_cfg_on_terminal_step", default=False,
                                 tooltip="On steps above every trained finite σ (the terminal step) use the "
                                 "conditional prediction alone and skip the unconditional pass: faster, and the "
                                 "mean colour comes from the prompt without CFG overshoot. Needs ZTSNR."),
            ],
            outputs=[io.Model.Output(tooltip="A clone sampling with the chosen prediction and schedule.")],
        )

    @classmethod
    def execute(cls, model, prediction, zsnr, terminal_sigma, skip_cfg_on_terminal_step) -> io.NodeOutput:
        who = "V-Prediction / ZTSNR"
        require("model_sampling", who)
        model_sampling = model.get_model_object("model_sampling")
        schedule = read_discrete_schedule(model_sampling, who)
        prediction_type = PREDICTIONS.get(prediction) or detected_prediction(model_sampling, who)
        use_zsnr = {"auto": schedule.zsnr, "on": True, "off": False}[zsnr]
        is_v = is_v_prediction(prediction_type)
        if use_zsnr and not is_v:
            raise SNRToolkitError(f"{who}: ZTSNR needs v_prediction. At SNR 0 the input holds no signal, so an "
                                  "ε-prediction model's x0 = x − σε is undefined (Lin et al. 2023). Set "
                                  "prediction to v_prediction (if the checkpoint is v-pred) or zsnr off.")
        if skip_cfg_on_terminal_step and not use_zsnr:
            raise SNRToolkitError(f"{who}: skip_cfg_on_terminal_step needs ZTSNR; without it there is no "
                                  "terminal step. Turn zsnr on (ZTSNR checkpoints only) or the option off.")
        # schedule.zsnr: what the loader set, from the ztsnr key (core) or also the file's metadata (ours).
        if zsnr == "on" and is_v and not schedule.zsnr:
            log.warning("%s: ZTSNR forced on a v-prediction checkpoint without the 'ztsnr' key or ZTSNR metadata. If "
                        "it was not trained with Zero Terminal SNR the image will burn; use zsnr auto/off then.", who)

        terminal = TERMINAL_SIGMAS[terminal_sigma] if use_zsnr else None
        patched, table = configure_sampling(model, schedule, prediction_type, terminal, chosen_terminal_sigma=terminal)
        patched.remove_wrappers_with_key(WrappersMP.CALC_COND_BATCH, SKIP_CFG_WRAPPER_KEY)
        if skip_cfg_on_terminal_step:
            patched.add_wrapper_with_key(WrappersMP.CALC_COND_BATCH, SKIP_CFG_WRAPPER_KEY,
                                         skip_uncond_above(float(table[-2])))
        log.info("%s: %s, zsnr %s%s", who, prediction_type.__name__, use_zsnr,
                 f", terminal σ {terminal:g}" if use_zsnr else "")
        return io.NodeOutput(patched)
