"""Door to ComfyUI's KSAMPLER (comfy/samplers.py): the SAMPLER object that SamplerCustom(Advanced)
and KSampler run, and the k-diffusion sampler functions inside it.

Assumptions: KSAMPLER(sampler_function, extra_options, inpaint_options) keeps them as attributes and
calls sampler_function(model, x, sigmas, extra_args=..., callback=..., disable=..., **extra_options);
ancestral/SDE functions take a `noise_sampler(σ, σ_next)` keyword; the guider puts the sampling
seed in extra_args["seed"]."""
from __future__ import annotations

import inspect

import comfy.samplers

from ..errors import SNRToolkitError
from . import require


def takes_noise_sampler(sampler) -> bool:
    function = getattr(sampler, "sampler_function", None)
    return function is not None and "noise_sampler" in inspect.signature(function).parameters


def with_noise_sampler(sampler, make_noise_sampler, who: str):
    """A KSAMPLER running `sampler`'s function with noise_sampler = make_noise_sampler(x, seed)."""
    require("ksampler", who)
    if not takes_noise_sampler(sampler):
        function = getattr(sampler, "sampler_function", None)
        name = getattr(function, "__name__", type(sampler).__name__)
        raise SNRToolkitError(f"{who}: {name} takes no noise sampler: it is deterministic, or builds its own (the "
                              "*_gpu variants). Use an ancestral or SDE sampler such as euler_ancestral or "
                              "dpmpp_2m_sde; for the initial noise use 'Pyramid Noise'.")
    function = sampler.sampler_function

    def sample(model, x, sigmas, extra_args=None, callback=None, disable=None, **options):
        options["noise_sampler"] = make_noise_sampler(x, (extra_args or {}).get("seed", 0))
        return function(model, x, sigmas, extra_args=extra_args, callback=callback, disable=disable, **options)

    return comfy.samplers.KSAMPLER(sample, extra_options=dict(sampler.extra_options),
                                   inpaint_options=dict(sampler.inpaint_options))


def contract_problems() -> list[str]:
    found = []
    ksampler = getattr(comfy.samplers, "KSAMPLER", None)
    if ksampler is None:
        return ["comfy.samplers.KSAMPLER is gone"]
    parameters = list(inspect.signature(ksampler.__init__).parameters)[1:]
    if parameters[:3] != ["sampler_function", "extra_options", "inpaint_options"]:
        found.append(f"KSAMPLER's parameters are {parameters}, not (sampler_function, extra_options, inpaint_options)")
    if "self.sampler_function(" not in inspect.getsource(ksampler.sample):
        found.append("KSAMPLER.sample no longer calls self.sampler_function")
    ancestral = comfy.samplers.sampler_object("euler_ancestral")
    if not takes_noise_sampler(ancestral):
        found.append("euler_ancestral's sampler function no longer takes noise_sampler")
    if '"seed"' not in inspect.getsource(comfy.samplers.CFGGuider):
        found.append("CFGGuider no longer passes the seed in extra_args[\"seed\"]")
    return found
