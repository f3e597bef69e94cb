"""Door to ComfyUI's CFG step (comfy/samplers.py sampling_function, calc_cond_batch) and the
model-patcher hooks around it (post-CFG functions, CALC_COND_BATCH / APPLY_MODEL wrappers).

Assumptions: post-CFG functions get a dict with "denoised", "cond_denoised", "uncond_denoised",
"cond", "uncond", "input", "sigma", "model", "model_options" and return the new denoised;
calc_cond_batch(model, conds, x_in, timestep, model_options) returns one prediction per cond;
WrappersMP names CALC_COND_BATCH, APPLY_MODEL and DIFFUSION_MODEL and CALC_COND_BATCH wrappers are
called as (executor, model, conds, x_in, timestep, model_options)."""
from __future__ import annotations

import inspect

import comfy.patcher_extension
import comfy.samplers

POST_CFG_KEYS = ("denoised", "cond_denoised", "uncond_denoised", "cond", "uncond", "input", "sigma", "model",
                 "model_options")
WrappersMP = comfy.patcher_extension.WrappersMP


def calc_cond_batch(model, conds, x, sigma, model_options):
    """One prediction per entry of `conds`, as ComfyUI's CFG step computes them."""
    return comfy.samplers.calc_cond_batch(model, conds, x, sigma, model_options)


def model_wrappers(model_options: dict, *kinds: str) -> bool:
    """Whether any wrapper of these kinds is installed in model_options."""
    wrappers = model_options.get("transformer_options", {}).get("wrappers", {})
    return any(wrappers.get(kind) for kind in kinds)


def contract_problems() -> list[str]:
    found = []
    for name in ("CALC_COND_BATCH", "APPLY_MODEL", "DIFFUSION_MODEL"):
        if not hasattr(WrappersMP, name):
            found.append(f"comfy.patcher_extension.WrappersMP.{name} is gone")
    calc = getattr(comfy.samplers, "calc_cond_batch", None)
    if calc is None:
        return found + ["comfy.samplers.calc_cond_batch is gone"]
    parameters = list(inspect.signature(calc).parameters)
    if parameters != ["model", "conds", "x_in", "timestep", "model_options"]:
        found.append(f"calc_cond_batch's parameters are {parameters}")
    source = inspect.getsource(comfy.samplers.cfg_function)
    post_cfg = source[source.find("sampler_post_cfg_function"):]
    missing = [key for key in POST_CFG_KEYS if f'"{key}"' not in post_cfg]
    if "sampler_post_cfg_function" not in source or missing:
        found.append(f"post-CFG functions no longer get the keys {missing or list(POST_CFG_KEYS)}")
    return found
