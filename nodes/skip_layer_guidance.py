"""SNRTSkipLayerGuidance (MODEL): Skip Layer Guidance for SD3.5 Medium's MMDiT."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import torch

from comfy_api.latest import io

from ..errors import SNRToolkitError
from ..internals import stop_if
from ..internals.cfg import calc_cond_batch
from ..internals.mmdit import (ForkState, denoised_from_tokens, fork_patch, fork_problems, has_block_patch,
                               joint_block_count, protocol_problems, skip_options, why_not_forkable)
from ..samplers.guidance import in_sigma_window, in_step_window, skip_layer_guidance, step_index
from .schema import advanced, schema

log = logging.getLogger("snr_toolkit")

GATE_STEPS = "step fraction"
GATE_SIGMA = "sigma percent"


@dataclass(frozen=True)
class SLGSettings:
    layers: tuple[int, ...]
    scale: float
    start: float
    end: float
    gating: str


#: The anchors' exact defaults. SAI: Stability-AI/sd3.5 sd3_infer.py (Medium); diffusers: its SD3
#: pipeline's skip_guidance_* defaults; ComfyUI: SkipLayerGuidanceSD3's defaults.
PRESETS = {
    "SAI reference": SLGSettings((7, 8, 9), 2.5, 0.01, 0.20, GATE_STEPS),
    "diffusers": SLGSettings((7, 8, 9), 2.8, 0.01, 0.20, GATE_STEPS),
    "ComfyUI": SLGSettings((7, 8, 9), 3.0, 0.01, 0.15, GATE_SIGMA),
}
CUSTOM = "custom"


def parse_layers(text: str) -> tuple[int, ...]:
    if not re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*,?\s*", text or ""):
        raise SNRToolkitError(f"Skip Layer Guidance: layers must be block indices separated by commas, "
                              f"like '7, 8, 9'; got {text!r}")
    return tuple(sorted({int(n) for n in re.findall(r"\d+", text)}))


def validate(settings: SLGSettings, depth: int, who: str) -> None:
    if not settings.layers:
        raise SNRToolkitError(f"{who}: no layers given; SD3.5 Medium's reference skips '7, 8, 9'.")
    too_deep = [layer for layer in settings.layers if layer >= depth]
    if too_deep:
        raise SNRToolkitError(f"{who}: layer {too_deep[0]} is out of range: this model has {depth} joint blocks "
                              f"(0 … {depth - 1}).")
    if not settings.start < settings.end:
        raise SNRToolkitError(f"{who}: start ({settings.start}) must be below end ({settings.end}); the window "
                              "would be empty.")
    if not settings.scale > 0:
        raise SNRToolkitError(f"{who}: scale must be above 0 (0 disables SLG: leave the node out instead).")


def make_gate(settings: SLGSettings, model_sampling):
    """gate(sigma, schedule): is the model call with this σ tensor inside the window? The fork's block
    patch and the post-CFG step of one model call share that tensor, so the answer is kept for it: one
    tensor read per model call (the first small op after heavy blocks costs ~30 µs on a CPU)."""
    if settings.gating == GATE_SIGMA:
        sigma_start = model_sampling.percent_to_sigma(settings.start)
        sigma_end = model_sampling.percent_to_sigma(settings.end)
        inside = lambda sigma, schedule: in_sigma_window(sigma, sigma_start, sigma_end)  # noqa: E731
    else:
        floats = [None, None]  # the sampler's schedule as floats, read once per sampling run

        def inside(sigma, schedule):
            if schedule is None:
                raise SNRToolkitError("Skip Layer Guidance: step-fraction gating needs the sampler's sigmas, which "
                                      "this sampler did not provide; use gating 'sigma percent'.")
            if floats[0] is not schedule:
                floats[:] = schedule, schedule.tolist()
            return in_step_window(step_index(floats[1], sigma), len(floats[1]) - 1, settings.start, settings.end)
    last = [None, False]

    def gate(sigma: torch.Tensor, schedule) -> bool:
        if sigma is not last[0]:
            last[:] = sigma, inside(float(sigma.max()), schedule)
        return last[1]
    return gate


def slg_post_cfg(settings: SLGSettings, gate, fork: ForkState | None):
    """SLG as a post-CFG step. With `fork`, the skip branch was run from the cond pass's state at the
    first skipped block (slg_fork.py); otherwise, or when that was not possible, one plain extra cond
    pass runs with the layers skipped."""
    first = settings.layers[0]
    last_path = [None]

    def report(path: str) -> None:
        if path != last_path[0]:
            log.info("Skip Layer Guidance: %s", path)
            last_path[0] = path

    def post_cfg(args):
        sigma = args["sigma"]
        schedule = args["model_options"].get("transformer_options", {}).get("sample_sigmas")
        if not gate(sigma, schedule):
            return args["denoised"]
        if fork is not None:
            tokens = fork.take(sigma, args["input"].shape[0])
            reason = why_not_forkable(args) or (None if tokens is not None else
                                                "the cond pass did not run in one piece")
            if reason is None:
                cond_skipped = denoised_from_tokens(args["model"], tokens, args["input"], sigma)
                report(f"fast path, forked at block {first}: the skip branch runs "
                       f"{len(args['model'].diffusion_model.joint_blocks) - first - len(settings.layers)} blocks")
                return skip_layer_guidance(args["denoised"], args["cond_denoised"], cond_skipped, settings.scale)
            fork.disabled = True  # stop forking for the rest of this sampling run
            report(f"plain path (a full extra cond pass), because {reason}")
        else:
            report("plain path (a full extra cond pass), fast path off")
        options = skip_options(args["model_options"].copy(), settings.layers)
        (cond_skipped,) = calc_cond_batch(args["model"], [args["cond"]], args["input"], sigma, options)
        return skip_layer_guidance(args["denoised"], args["cond_denoised"], cond_skipped, settings.scale)
    return post_cfg


class SNRTSkipLayerGuidance(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        sai = PRESETS["SAI reference"]
        return schema(
            search_aliases=["slg", "skip layer guidance", "sd3.5", "stability"],
            node_id="SNRTSkipLayerGuidance",
            display_name="Skip Layer Guidance (SD3.5)",
            category="advanced/guidance",
            description=(
                "Skip Layer Guidance, recommended by Stability AI for SD 3.5 Medium (anatomy, coherence): on steps in "
                "the window, run the positive prompt once more with some MMDiT joint blocks skipped and push away "
                "from it: out = cfg + (cond − cond_skipped) × scale. Presets carry each anchor's exact defaults; "
                "the layers/scale/start/end/gating widgets are read only with preset 'custom'. Chain 'Rescale CFG' "
                "after this node to rescale the SLG result."),
            inputs=[
                io.Model.Input("model", tooltip="An SD3 / SD3.5 (MMDiT) model. UNet models are refused."),
                io.Combo.Input("preset", options=list(PRESETS) + [CUSTOM], default="SAI reference",
                               tooltip="SAI reference: layers 7,8,9, scale 2.5, steps with 0.01 < i/N < 0.20 (SD3.5 "
                               "Medium; SAI pairs it with cfg 4, dpmpp_2m, shift 3). diffusers: scale 2.8, same "
                               "window. ComfyUI: scale 3.0, sigma percent 0.01–0.15. custom: the widgets below."),
                io.String.Input("layers", **advanced(), default=", ".join(map(str, sai.layers)),
                                tooltip="Joint blocks to skip, comma separated (custom only). SD3.5 Medium has 24 "
                                "(0–23)."),
                io.Float.Input("scale", **advanced(), default=sai.scale, min=0.0, max=10.0, step=0.05,
                               tooltip="SLG strength (custom only)."),
                io.Float.Input("start", **advanced(), default=sai.start, min=0.0, max=1.0, step=0.001,
                               tooltip="Window start (custom only): a step fraction i/N, or a sigma percent."),
                io.Float.Input("end", **advanced(), default=sai.end, min=0.0, max=1.0, step=0.001,
                               tooltip="Window end (custom only), above start."),
                io.Combo.Input("gating", **advanced(), options=[GATE_STEPS, GATE_SIGMA], default=GATE_STEPS,
                               tooltip="step fraction: step i of N is guided when start·N < i < end·N (SAI, "
                               "diffusers). sigma percent: σ between the model's σ at start and end percent "
                               "(ComfyUI). Custom only."),
                io.Boolean.Input("fast_path", **advanced(), default=True, optional=True,
                                 tooltip="Fork the skip branch from the cond pass at the first skipped block "
                                 "instead of a full extra pass: same result, 14/24 of the extra cost on SD3.5 "
                                 "Medium. Falls back to the full pass by itself (ControlNet, area/mask prompts, "
                                 "model wrappers) and says so in the log."),
            ],
            outputs=[io.Model.Output(tooltip="A clone with SLG as a post-CFG step.")],
        )

    @classmethod
    def execute(cls, model, preset, layers, scale, start, end, gating, fast_path=True) -> io.NodeOutput:
        who = "Skip Layer Guidance (SD3.5)"
        depth = joint_block_count(model, who)
        if preset == CUSTOM:
            settings = SLGSettings(parse_layers(layers), scale, start, end, gating)
        elif preset in PRESETS:
            settings = PRESETS[preset]
            widgets = SLGSettings(tuple(int(n) for n in re.findall(r"\d+", layers or "")), scale, start, end, gating)
            if widgets != settings:
                log.warning("%s: preset %r sets the values; the layers/scale/start/end/gating widgets (%s) are "
                            "ignored. Choose preset 'custom' to use them.", who, preset, widgets)
        else:
            raise SNRToolkitError(f"{who}: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}, {CUSTOM}.")
        validate(settings, depth, who)
        stop_if(protocol_problems(), who)
        fork = None
        if fast_path:
            reason = ("block %d already has a replace patch from another node" % settings.layers[0]
                      if has_block_patch(model, settings.layers[0])
                      else "; ".join(fork_problems(type(model.model.diffusion_model), type(model.model))))
            if reason:
                log.warning("%s: fast path off, the plain extra pass runs instead (same output, slower): %s",
                            who, reason)
            else:
                fork = ForkState()
        gate = make_gate(settings, model.get_model_object("model_sampling"))
        patched = model.clone()
        if fork is not None:
            patched.set_model_patch_replace(fork_patch(fork, model.model.diffusion_model, settings.layers[0],
                                                       settings.layers,
                                                       lambda sigma, options: gate(sigma, options.get("sample_sigmas"))),
                                            "dit", "double_block", settings.layers[0])
        patched.set_model_sampler_post_cfg_function(slg_post_cfg(settings, gate, fork))
        log.info("%s: preset %s, layers %s, scale %g, %s window %g–%g", who, preset, list(settings.layers),
                 settings.scale, settings.gating, settings.start, settings.end)
        return io.NodeOutput(patched)
