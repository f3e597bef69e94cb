"""SNRTCheckpointLoader (MODEL, CLIP, VAE, STRING): the core checkpoint loader, plus what the file's
safetensors header says about how the model was trained (schedules/checkpoint_metadata.py)."""
from __future__ import annotations

import dataclasses
import logging
import os

from comfy_api.latest import io

from ..internals import require
from ..internals.checkpoint_loading import checkpoint_names, load_checkpoint, loaded_sampling
from ..internals.model_sampling import PREDICTIONS, read_discrete_schedule
from ..internals.supported_models import model_family
from ..schedules.checkpoint_metadata import decide, found_line, read_safetensors_header, statements
from ..schedules.ztsnr import COMFYUI_TERMINAL_SIGMA, exact_plain_sigmas
from .schema import schema
from .v_prediction import configure_sampling

log = logging.getLogger("snr_toolkit")
WHO = "Load Checkpoint (reads training metadata)"
SAFETENSORS_SUFFIXES = (".safetensors", ".sft")


def configure(model, keys, metadata) -> tuple[object, list[str]]:
    """The model sampling as the file's keys and metadata say (a clone if that differs from what
    ComfyUI's loader set, else the model itself), and the report's lines about it."""
    loaded = loaded_sampling(model.get_model_object("model_sampling"))
    lines = [f"ComfyUI loaded it as: {loaded.described}."]
    if loaded.kind != "discrete":
        said, _ = statements(keys, metadata)
        what = "flow model" if loaded.kind == "flow" else "not a discrete ε / v model"
        lines.append(f"Decision: {what}, metadata prediction keys not applicable"
                     + (f" ({'; '.join(s.shown for s in said)} not applied)" if said else "")
                     + ". Returned as loaded.")
        return model, lines
    decision = decide(keys, metadata, loaded.prediction, loaded.zsnr)
    lines.append(f"Prediction: {decision.prediction} (from {decision.prediction_from}).")
    terminal = COMFYUI_TERMINAL_SIGMA if decision.zsnr else None
    lines.append(f"ZTSNR: {'on' if decision.zsnr else 'off'} (from {decision.zsnr_from}).")
    lines += [f"Disagreement / note: {note}" for note in decision.notes]
    if (decision.prediction, decision.zsnr) == (loaded.prediction, loaded.zsnr):
        top = float(model.get_model_object("model_sampling").sigmas[-1])
        lines.append(f"Terminal σ {top:.2f}. Same as ComfyUI's loader: returned as loaded.")
        return model, lines
    require("model_sampling", WHO)
    model_sampling = model.get_model_object("model_sampling")
    schedule = read_discrete_schedule(model_sampling, WHO)
    if not schedule.zsnr:  # the float64 table ComfyUI rescales when the ztsnr key is there
        schedule = dataclasses.replace(schedule, plain_sigmas=exact_plain_sigmas(
            schedule.plain_sigmas, model_sampling.linear_start, model_sampling.linear_end))
    # The ZTSNR table ComfyUI builds for a file with the ztsnr key (ᾱ_T pinned, σ 4518.76), so a file that lost
    # its keys loads as the keyed file does; chosen terminal None keeps the ztsnr_* schedulers' default.
    patched, table = configure_sampling(model, schedule, PREDICTIONS[decision.prediction], terminal, None)
    lines.append(f"Terminal σ {float(table[-1]):.2f}"
                 + (" (ComfyUI's ZTSNR pin; V-Prediction / ZTSNR can pick NovelAI's 20000)" if terminal else "")
                 + f". Reconfigured: {loaded.prediction} → {decision.prediction}, ZTSNR "
                 f"{'on' if loaded.zsnr else 'off'} → {'on' if decision.zsnr else 'off'}.")
    return patched, lines


def report_and_model(ckpt_name: str, path: str, model) -> tuple[object, str]:
    lines = [f"{WHO}: {ckpt_name}", f"Family: {model_family(model)}."]
    if not path.lower().endswith(SAFETENSORS_SUFFIXES):
        lines.append(f"Not a safetensors file ({os.path.splitext(path)[1] or 'no suffix'}): no header to read. "
                     "Returned as ComfyUI's loader configured it (v_pred / ztsnr keys on SDXL).")
        return model, "\n".join(lines)
    try:
        keys, metadata = read_safetensors_header(path)
    except (OSError, ValueError) as error:
        lines.append(f"The safetensors header could not be read ({error}); returned as loaded.")
        return model, "\n".join(lines)
    lines.append(found_line(keys, metadata))
    configured, more = configure(model, keys, metadata)
    lines += more
    lines.append("Precedence: keys v_pred/ztsnr > modelspec.prediction_type > modelspec.predict_key > "
                 "modelspec.architecture > ss_v_parameterization / ss_zero_terminal_snr > ComfyUI's detection "
                 "(ComfyUI itself reads only the keys).")
    return configured, "\n".join(lines)


class SNRTCheckpointLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            search_aliases=["load checkpoint", "checkpoint", "ckpt", "v_pred", "ztsnr", "metadata", "modelspec"],
            node_id="SNRTCheckpointLoader",
            display_name=WHO,
            category="loaders",
            description=(
                "Loads a checkpoint exactly as Load Checkpoint does (same weights, same cost), then reads the "
                "file's safetensors header for how the model was trained: the v_pred / ztsnr keys ComfyUI reads, "
                "and the modelspec.prediction_type, modelspec.predict_key, ss_v_parameterization and "
                "ss_zero_terminal_snr metadata that merges and re-saves keep when they lose the keys. It sets "
                "v-prediction and ZTSNR from them by a fixed precedence (keys first) and reports what it found "
                "and which source won. Flow models (SD3, Flux) are returned as loaded."),
            inputs=[
                io.Combo.Input("ckpt_name", options=checkpoint_names(),
                               tooltip="The checkpoint to load, from ComfyUI's checkpoints folder."),
            ],
            outputs=[
                io.Model.Output(tooltip="The diffusion model, sampling as the file's keys and metadata say "
                                "(unchanged from Load Checkpoint when they agree with it)."),
                io.Clip.Output(tooltip="The text encoder, exactly as Load Checkpoint loads it."),
                io.Vae.Output(tooltip="The VAE, exactly as Load Checkpoint loads it."),
                io.String.Output("report", display_name="report",
                                 tooltip="What the header holds, the prediction type, ZTSNR and terminal σ "
                                 "decided, and which source won where they disagree. Connect to Preview as Text."),
            ],
        )

    @classmethod
    def execute(cls, ckpt_name) -> io.NodeOutput:
        require("checkpoint_loading", WHO)
        path, model, clip, vae = load_checkpoint(ckpt_name)
        model, report = report_and_model(ckpt_name, path, model)
        log.info("%s", report)
        return io.NodeOutput(model, clip, vae, report)
