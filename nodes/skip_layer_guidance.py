"""SNRTSkipLayerGuidance (MODEL): Skip Layer Guidance on every DiT family ComfyUI's layer-skip patches reach."""
from __future__ import annotations

import logging
import re

import torch

from comfy_api.latest import io

from ..errors import SNRToolkitError
from ..internals import stop_if
from ..internals.cfg import WrappersMP, calc_cond_batch
from ..internals.dit import (DOUBLE, ForkState, block_counts, branch_options, dit_family, has_block_patch, keep_patch,
                             model_fork_problems, patches_bypassed, protocol_problems, skip_options, why_not_forkable)
from ..samplers.guidance import in_sigma_window, in_step_range, in_step_window, skip_layer_guidance, step_index
from ..samplers.slg_presets import (CUSTOM, GATE_SIGMA, GATE_STEP_RANGE, GATE_STEPS, GATES, MODE_ORIGINAL, MODE_UNCOND, MODES, PRESETS,
                                    RECOMMENDED, SLGSettings, blocks_run_by_branch, first_skipped, parse_layers,
                                    preset_fits, presets_for, recommended, validation_problem)
from .schema import advanced, schema

log = logging.getLogger("snr_toolkit")
WHO = "Skip Layer Guidance"
UNCOND_WRAPPER_KEY = "snr_toolkit_slg_uncond"


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
                raise SNRToolkitError(f"{WHO}: step-fraction gating needs the sampler's sigmas, which this sampler "
                                      "did not provide; use gating 'sigma percent'.")
            if floats[0] is not schedule:
                floats[:] = schedule, schedule.tolist()
            step_in = in_step_range if settings.gating == GATE_STEP_RANGE else in_step_window
            return step_in(step_index(floats[1], sigma), len(floats[1]) - 1, settings.start, settings.end)
    last = [None, False]

    def gate(sigma: torch.Tensor, schedule) -> bool:
        if sigma is not last[0]:
            last[:] = sigma, inside(float(sigma.max()), schedule)
        return last[1]
    return gate


def schedule_of(options: dict):
    return options.get("transformer_options", {}).get("sample_sigmas")


def stop_if_bypassed(model_options: dict) -> None:
    reason = patches_bypassed(model_options)
    if reason:
        raise SNRToolkitError(f"{WHO}: {reason}. Sample without this node, or with another sampler.")


def slg_post_cfg(settings: SLGSettings, counts: dict, gate, fork: ForkState | None):
    """SLG as a post-CFG step. With `fork`, the skip branch resumes from the cond pass's state at the first
    skipped block (internals/dit.py); otherwise, or when that was not possible, one plain extra cond pass
    runs with the layers skipped."""
    first = first_skipped(settings, counts)
    last_path = [None]

    def report(path: str) -> None:
        if path != last_path[0]:
            log.info("%s: %s", WHO, path)
            last_path[0] = path

    def post_cfg(args):
        sigma = args["sigma"]
        if not gate(sigma, schedule_of(args["model_options"])):
            return args["denoised"]
        stop_if_bypassed(args["model_options"])
        options = args["model_options"].copy()
        if fork is not None:
            kept = fork.take(sigma, args["input"].shape[0])
            reason = why_not_forkable(args) or (None if kept is not None else "the cond pass did not run in one piece")
            if reason is None:
                options = branch_options(options, counts, settings.layers(), first, kept)
                report(f"fast path, forked at block {first[1]}: the skip branch runs "
                       f"{blocks_run_by_branch(settings, counts)} blocks")
            else:
                fork.disabled = True  # stop forking for the rest of this sampling run
                report(f"plain path (a full extra cond pass), because {reason}")
                options = skip_options(options, settings.layers())
        else:
            report("plain path (a full extra cond pass), fast path off")
            options = skip_options(options, settings.layers())
        (cond_skipped,) = calc_cond_batch(args["model"], [args["cond"]], args["input"], sigma, options)
        return skip_layer_guidance(args["denoised"], args["cond_denoised"], cond_skipped, settings.scale)
    return post_cfg


def uncond_skipped(settings: SLGSettings, gate):
    """CALC_COND_BATCH wrapper: inside the window the uncond prediction comes from a pass with the layers
    skipped (ComfyUI's SkipLayerGuidanceDiTSimple: the cond pass, then the skipped uncond pass)."""
    warned = []

    def wrapper(executor, model, conds, x_in, timestep, model_options):
        if len(conds) == 2 and conds[1] is None and not warned:
            warned.append(True)  # ComfyUI leaves the uncond pass out at cfg 1
            log.warning("%s: mode uncond changes nothing here: the sampler runs no uncond pass (cfg 1). Use mode "
                        "original, or a cfg above 1.", WHO)
        if len(conds) != 2 or conds[1] is None or not gate(timestep, schedule_of(model_options)):
            return executor(model, conds, x_in, timestep, model_options)
        stop_if_bypassed(model_options)
        cond, _ = executor(model, [conds[0], None], x_in, timestep, model_options)
        _, uncond = executor(model, [None, conds[1]], x_in, timestep,
                             skip_options(model_options.copy(), settings.layers()))
        return [cond, uncond]
    return wrapper


def chosen_settings(preset, layers, scale, start, end, gating, single_layers, mode, family, counts):
    """(preset name, settings) after resolving 'recommended', checking fit, and validating custom values."""
    chosen_by_user = preset != RECOMMENDED
    if preset == RECOMMENDED:
        preset = recommended(family.name, counts)
        if not PRESETS[preset].recommended:
            log.warning("%s: no preset is published for this %s model (%d blocks); using %r (%s). Check the result, "
                        "or choose 'custom'.", WHO, family.name, counts[DOUBLE], preset, PRESETS[preset].source)
    if preset == CUSTOM:
        try:
            settings = SLGSettings(parse_layers(layers, WHO, allow_empty=True), scale, start, end, gating,
                                   parse_layers(single_layers, WHO, allow_empty=True, name="single_layers"), mode)
        except ValueError as error:
            raise SNRToolkitError(str(error)) from None
        problem = validation_problem(settings, family.name, counts)
        if problem:
            raise SNRToolkitError(f"{WHO}: {problem}.")
        return preset, settings
    if preset not in PRESETS:
        raise SNRToolkitError(f"{WHO}: unknown preset {preset!r}; choose one of {RECOMMENDED}, "
                              f"{', '.join(PRESETS)}, {CUSTOM}.")
    published_for = (PRESETS[preset].model or "").partition(" ")[0]
    if published_for and published_for != family.name:
        fitting = presets_for(family.name, counts) + ["ComfyUI", "ComfyUI (uncond)"]
        raise SNRToolkitError(f"{WHO}: preset {preset!r} was published for {PRESETS[preset].source}, not for this "
                              f"{family.name} model; its block numbers would mean other blocks here. Presets for "
                              f"this model: {', '.join(fitting)}; or choose 'custom'.")
    if not preset_fits(PRESETS[preset], family.name, counts):  # same family, another size (SD3.5 Large)
        log.warning("%s: preset %r was published for %s; this %s model has %d blocks, where nothing was published "
                    "for these values. Check the result, or choose 'custom'.", WHO, preset, PRESETS[preset].source,
                    family.name, counts[DOUBLE])
    settings = PRESETS[preset].settings
    widgets = (tuple(int(n) for n in re.findall(r"\d+", layers or "")), scale, start, end, gating,
               tuple(int(n) for n in re.findall(r"\d+", single_layers or "")), mode)
    preset_values = (settings.double, settings.scale, settings.start, settings.end, settings.gating, settings.single,
                     settings.mode)
    if chosen_by_user and widgets != preset_values:
        log.warning("%s: preset %r sets the values; the layers/scale/start/end/gating/single_layers/mode widgets (%s) are ignored. "
                    "Choose preset 'custom' to use them.", WHO, preset, widgets)
    return preset, settings


class SNRTSkipLayerGuidance(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        sai = PRESETS["SAI reference"].settings
        sources = "; ".join(f"{name}: {p.source}" for name, p in PRESETS.items())
        return schema(
            search_aliases=["slg", "skip layer guidance", "sd3.5", "wan", "flux", "stability"],
            node_id="SNRTSkipLayerGuidance",
            display_name="Skip Layer Guidance (DiT)",
            category="advanced/guidance",
            description=(
                "Skip Layer Guidance (Stability AI for SD 3.5 Medium; used on Wan, SD 3.5 Large, Flux and other "
                "DiTs): in the window, run the prompt once more with some transformer blocks skipped and push away "
                "from it. Mode original: out = cfg + (cond − cond_skipped) × scale (3 passes, the third forked from "
                "the cond pass where exact). Mode uncond: the uncond pass runs with the blocks skipped (2 passes). "
                "Detects the model family; presets carry each source's exact values, the widgets are read only "
                "with preset 'custom'. Chain 'Rescale CFG' after this node to rescale the result."),
            inputs=[
                io.Model.Input("model", tooltip="A DiT model: SD3/SD3.5, Flux, Chroma, Wan, HunyuanVideo, LTX-Video, "
                               "LTX-2, Qwen-Image, AuraFlow, Mochi, HunyuanDiT, Stable Audio, Hunyuan3D, Kandinsky 5, "
                               "JoyImage, Lens, MageFlow, HiDream-O1, MiniMax H3. UNet models are refused. Not "
                               "mutated."),
                io.Combo.Input("preset", options=[RECOMMENDED] + list(PRESETS) + [CUSTOM], default=RECOMMENDED,
                               tooltip="recommended: the preset published for the detected family (else 'ComfyUI'). "
                               f"{sources}. custom: the widgets below."),
                io.String.Input("layers", **advanced(), default=", ".join(map(str, sai.double)),
                                tooltip="Custom only: blocks to skip, comma separated: SD3 joint blocks, Flux/Chroma/"
                                "HunyuanVideo/AuraFlow/Hunyuan3D double blocks, the blocks of the other families "
                                "(SD3.5 Medium 0–23, Large 0–37, Wan 1.3B 0–29, 14B 0–39)."),
                io.Float.Input("scale", **advanced(), default=sai.scale, min=0.0, max=10.0, step=0.05,
                               tooltip="Custom only: SLG strength (mode original; mode uncond has none)."),
                io.Float.Input("start", **advanced(), default=sai.start, min=0.0, max=1.0, step=0.001,
                               tooltip="Custom only: window start, a step fraction i/N or a sigma percent."),
                io.Float.Input("end", **advanced(), default=sai.end, min=0.0, max=1.0, step=0.001,
                               tooltip="Custom only: window end, above start."),
                io.Combo.Input("gating", **advanced(), options=list(GATES), default=GATE_STEPS,
                               tooltip="Custom only. step fraction: step i of N is guided when start·N < i < end·N "
                               "(SAI, diffusers). step range: int(start·N) ≤ i < int(end·N) (musubi-tuner, Wan2GP). "
                               "sigma percent: σ between the model's σ at start and "
                               "end percent (ComfyUI)."),
                io.Boolean.Input("fast_path", **advanced(), default=True, optional=True,
                                 tooltip="Mode original: run the skip branch from the cond pass's state at the first "
                                 "skipped block instead of a full extra pass: the same result, e.g. 14/24 of the "
                                 "extra cost on SD3.5 Medium. Falls back to the full pass by itself (ControlNet, "
                                 "area/mask prompts, model wrappers, a ComfyUI whose block loop changed) and says "
                                 "so in the log."),
                io.String.Input("single_layers", **advanced(), default="", optional=True,
                                tooltip="Custom only: single blocks to skip (Flux 0–37, Chroma, HunyuanVideo, "
                                "AuraFlow, Hunyuan3D); empty for families that have none."),
                io.Combo.Input("mode", **advanced(), options=list(MODES), default=MODE_ORIGINAL, optional=True,
                               tooltip="Custom only. original: a third pass, cond with blocks skipped (ComfyUI's "
                               "SkipLayerGuidanceDiT). uncond: the uncond pass skips the blocks, 2 passes, scale "
                               "unused (ComfyUI's SkipLayerGuidanceDiTSimple, musubi-tuner --slg_mode uncond)."),
            ],
            outputs=[io.Model.Output(tooltip="A clone with SLG installed.")],
        )

    @classmethod
    def execute(cls, model, preset, layers, scale, start, end, gating, fast_path=True, single_layers="",
                mode=MODE_ORIGINAL) -> io.NodeOutput:
        family = dit_family(model, WHO)
        counts = block_counts(model, family)
        preset, settings = chosen_settings(preset, layers, scale, start, end, gating, single_layers, mode, family,
                                           counts)
        stop_if(protocol_problems(family, family.loop_object_class(model.model.diffusion_model)), WHO)
        absent = {kind: [i for i in indices if i >= counts[kind]] for kind, indices in settings.layers().items()}
        if any(absent.values()):  # presets only: custom layers were validated
            log.info("%s: preset %s names blocks this %s model does not have (%s); like ComfyUI's node, they are "
                     "left out.", WHO, preset, family.name, absent)
        gate = make_gate(settings, model.get_model_object("model_sampling"))
        patched = model.clone()
        if settings.mode == MODE_UNCOND:
            patched.remove_wrappers_with_key(WrappersMP.CALC_COND_BATCH, UNCOND_WRAPPER_KEY)
            patched.add_wrapper_with_key(WrappersMP.CALC_COND_BATCH, UNCOND_WRAPPER_KEY, uncond_skipped(settings, gate))
        else:
            first = first_skipped(settings, counts)
            fork = ForkState() if fast_path and first and cls._can_fork(model, family, first) else None
            if fork is not None:
                patched.set_model_patch_replace(
                    keep_patch(fork, model.model.diffusion_model, family, first[0], first[1],
                               lambda sigma, options: gate(sigma, options.get("sample_sigmas"))),
                    "dit", first[0], first[1])
            patched.set_model_sampler_post_cfg_function(slg_post_cfg(settings, counts, gate, fork))
        log.info("%s: %s model, preset %s, mode %s, double %s single %s, scale %g, %s window %g–%g", WHO,
                 family.name, preset, settings.mode, list(settings.double), list(settings.single), settings.scale,
                 settings.gating, settings.start, settings.end)
        return io.NodeOutput(patched)

    @staticmethod
    def _can_fork(model, family, first) -> bool:
        reason = (f"block {first[1]} already has a replace patch from another node"
                  if has_block_patch(model, *first)
                  else "; ".join(model_fork_problems(model.model.diffusion_model, family)))
        if reason:
            log.warning("%s: fast path off, the plain extra pass runs instead (same output, slower): %s", WHO, reason)
        return not reason
