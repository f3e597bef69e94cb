"""Door to ComfyUI's checkpoint loading (folder_paths, comfy/sd.py): the `checkpoints` folder, and
`comfy.sd.load_checkpoint_guess_config` called exactly as the core CheckpointLoaderSimple calls it, so the
pack's loader loads the same weights at the same cost.

Assumptions (checked by `contract_problems`, behaviourally where possible): folder_paths lists and
resolves the "checkpoints" and "embeddings" folders; load_checkpoint_guess_config takes
(path, output_vae=, output_clip=, embedding_directory=) and returns MODEL, CLIP, VAE first; ComfyUI
decides v-prediction and ZTSNR from the `v_pred` / `ztsnr` state-dict keys (SDXL.model_type) and reads
none of the prediction metadata the pack's loader honours (a release that starts to would need the
precedence in schedules/checkpoint_metadata.py re-checked against its own).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import comfy.model_sampling
import comfy.sd
import folder_paths

from .model_sampling import is_flow_model

#: Metadata names the pack's loader reads; ComfyUI's loading modules must not read them themselves.
HONOURED_METADATA = ("modelspec.prediction_type", "modelspec.predict_key", "ss_v_parameterization",
                     "ss_zero_terminal_snr")
LOADING_MODULES = ("comfy.sd", "comfy.model_detection", "comfy.supported_models", "comfy.supported_models_base",
                   "comfy.model_base", "comfy.utils")


def checkpoint_names() -> list[str]:
    return folder_paths.get_filename_list("checkpoints")


def load_checkpoint(ckpt_name: str):
    """(path, MODEL, CLIP, VAE) as CheckpointLoaderSimple loads them (nodes.py)."""
    path = folder_paths.get_full_path_or_raise("checkpoints", ckpt_name)
    out = comfy.sd.load_checkpoint_guess_config(path, output_vae=True, output_clip=True,
                                                embedding_directory=folder_paths.get_folder_paths("embeddings"))
    return (path, *out[:3])


@dataclass(frozen=True)
class LoadedSampling:
    """How ComfyUI's loader set the model up: kind "discrete" (DDPM table, ε or v), "flow" or "other"."""
    kind: str
    prediction: str | None  # "v_prediction" / "eps" on discrete models
    zsnr: bool
    described: str


def comfy_classes(model_sampling) -> str:
    """The comfy.model_sampling classes a loader's sampling object mixes (its own class is made per load)."""
    return ", ".join(c.__name__ for c in type(model_sampling).__mro__ if c.__module__ == "comfy.model_sampling")


def loaded_sampling(model_sampling) -> LoadedSampling:
    name = type(model_sampling).__name__
    if is_flow_model(model_sampling):
        shift = getattr(model_sampling, "shift", None)
        return LoadedSampling("flow", None, False, f"flow matching ({comfy_classes(model_sampling)}"
                              + (f", shift {float(shift):g}" if shift is not None else "") + ")")
    discrete = (isinstance(model_sampling, comfy.model_sampling.ModelSamplingDiscrete)
                and not isinstance(model_sampling, (comfy.model_sampling.ModelSamplingDiscreteEDM,
                                                    comfy.model_sampling.StableCascadeSampling)))
    if discrete and isinstance(model_sampling, comfy.model_sampling.V_PREDICTION):
        prediction = "v_prediction"
    elif discrete and isinstance(model_sampling, comfy.model_sampling.EPS) and not isinstance(
            model_sampling, comfy.model_sampling.X0):
        prediction = "eps"
    else:
        return LoadedSampling("other", None, False, f"{name} ({comfy_classes(model_sampling)})")
    zsnr = bool(getattr(model_sampling, "zsnr", False))
    return LoadedSampling("discrete", prediction, zsnr,
                          f"discrete DDPM table, {prediction}, ZTSNR {'on' if zsnr else 'off'}, "
                          f"σ_max {float(model_sampling.sigmas[-1]):.2f}")


def contract_problems() -> list[str]:
    import importlib

    import comfy.model_base
    import comfy.supported_models
    found = []
    for name in ("get_filename_list", "get_full_path_or_raise", "get_folder_paths"):
        if not callable(getattr(folder_paths, name, None)):
            found.append(f"folder_paths.{name} is gone (the loader's checkpoint list)")
    folders = getattr(folder_paths, "folder_names_and_paths", {})
    found += [f"folder_paths has no {f!r} folder" for f in ("checkpoints", "embeddings") if f not in folders]
    parameters = inspect.signature(comfy.sd.load_checkpoint_guess_config).parameters
    missing = [p for p in ("ckpt_path", "output_vae", "output_clip", "embedding_directory") if p not in parameters]
    if missing:
        found.append(f"load_checkpoint_guess_config's parameters changed (no {', '.join(missing)})")
    config = comfy.supported_models.SDXL(dict(comfy.supported_models.SDXL.unet_config))
    marker = {"v_pred": None, "ztsnr": None}
    if (config.model_type(marker) != comfy.model_base.ModelType.V_PREDICTION
            or not config.sampling_settings.get("zsnr")
            or comfy.supported_models.SDXL({}).model_type({}) != comfy.model_base.ModelType.EPS):
        found.append("SDXL.model_type no longer reads the v_pred / ztsnr keys as the loader's precedence assumes")
    for module_name in LOADING_MODULES:
        try:
            source = inspect.getsource(importlib.import_module(module_name))
        except (OSError, TypeError):
            continue  # no source to read (a compiled install): nothing to compare
        read = [key for key in HONOURED_METADATA if key in source]
        if read:
            found.append(f"{module_name} now reads {', '.join(read)} itself: re-check the loader's precedence "
                         "against ComfyUI's")
    return found
