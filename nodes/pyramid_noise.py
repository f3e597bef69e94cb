"""Pyramid / offset noise: SNRTPyramidNoise (NOISE), SNRTPyramidNoiseSampler (SAMPLER), SNRTPyramidLatent (LATENT)."""
from __future__ import annotations

import math

import torch

from comfy_api.latest import io

from ..errors import SNRToolkitError
from ..internals import require
from ..internals.ksampler import with_noise_sampler
from ..internals.model_sampling import is_flow_model
from ..internals.noise import fix_empty_latent_channels, prepare_noise
from ..internals.scheduler_registry import calculate_sigmas, scheduler_names
from ..samplers.pyramid_noise import pyramid_noise

DESCRIPTION_SOURCE = ("Multi-resolution noise as published (Whitaker 2023; kohya sd-scripts' pyramid_noise_like): "
                      "ComfyUI's own noise for the seed, plus levels i = 0 … iterations−1 of noise drawn at size / rⁱ "
                      "(r ∈ [2, 4)), upsampled bilinearly and weighted discountⁱ — level 0 is a second full-size "
                      "white draw — plus optional offset noise (Guttenberg 2023). Each sample is normalised to std 1 "
                      "by itself (kohya uses one std over the batch), so it does not depend on the rest of the "
                      "batch. It moves mean colour and large shapes, which plain noise barely does.")


def noise_inputs():
    return [
        io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                     tooltip="The white level is ComfyUI's own noise for this seed (what KSampler and RandomNoise "
                     "draw); the other levels come from the seed and the batch index. With a batch_index (Latent "
                     "From Batch, Repeat Latent Batch) a sample is the same in any batch. Without one ComfyUI draws "
                     "the whole batch at once, and then a sample's white level matches its single-image draw only "
                     "when the latent's channels × height × width is a multiple of 16 (not, e.g., at 1000×1000 or "
                     "odd latent sides); its other levels always match."),
        io.Int.Input("iterations", default=6, min=0, max=16,
                     tooltip="Levels added to the white noise, counted as published (kohya: 6–10): level 0 is a "
                     "second full-size white draw of weight 1, level i ≥ 1 noise of size / rⁱ; stops early once a "
                     "side reaches 1. 0 = ComfyUI's noise unchanged (plus the offset, if any)."),
        io.Float.Input("discount", default=0.3, min=0.0, max=0.99, step=0.01,
                       tooltip="Weight of level i is discountⁱ, so level 0 always weighs 1 (kohya's default 0.3; "
                       "the report used 0.8). 0 = white noise, though not ComfyUI's exact draw (use iterations 0)."),
        io.Float.Input("offset_strength", default=0.0, min=0.0, max=1.0, step=0.01,
                       tooltip="Offset noise: adds strength × N(0,1) per sample and channel (0.1 is the usual)."),
    ]


class PyramidNoise:
    """A NOISE object for SamplerCustomAdvanced."""

    def __init__(self, seed, iterations, discount, offset_strength):
        self.seed, self.iterations, self.discount, self.offset_strength = seed, iterations, discount, offset_strength

    def generate_noise(self, input_latent):
        samples = input_latent["samples"]
        return comfy_pyramid_noise(samples, self.seed, self.iterations, self.discount, self.offset_strength,
                                   input_latent.get("batch_index"))


def comfy_pyramid_noise(samples: torch.Tensor, seed, iterations, discount, offset_strength, batch_index=None,
                        who="Pyramid Noise"):
    """Pyramid noise whose white level is ComfyUI's prepare_noise for this latent, seed and batch_index."""
    require("noise", who)
    if getattr(samples, "is_nested", False):
        raise SNRToolkitError(f"{who}: this latent holds several tensors (audio + video); pyramid noise "
                              "takes a single latent tensor. Use RandomNoise for it.")
    white = prepare_noise(samples, seed, batch_index)
    indices = list(batch_index) if batch_index is not None else None
    return pyramid_noise(white, seed, iterations, discount, offset_strength, indices).to(samples.dtype)


class SNRTPyramidNoise(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SNRTPyramidNoise",
            display_name="Pyramid Noise",
            category="sampling/custom_sampling/noise",
            description=DESCRIPTION_SOURCE + " Use it in SamplerCustomAdvanced's noise input.",
            inputs=noise_inputs(),
            outputs=[io.Noise.Output(tooltip="Initial noise for SamplerCustomAdvanced.")],
        )

    @classmethod
    def execute(cls, seed, iterations, discount, offset_strength) -> io.NodeOutput:
        return io.NodeOutput(PyramidNoise(seed, iterations, discount, offset_strength))


def pyramid_noise_sampler(x: torch.Tensor, seed: int, iterations: int, discount: float, offset_strength: float):
    """A k-diffusion noise_sampler(σ, σ_next) drawing fresh pyramid noise at every call."""
    calls = [0]

    def noise_sampler(sigma, sigma_next):
        calls[0] += 1
        call_seed = (int(seed) + 0x9E3779B1 * calls[0]) % 2**64
        # Not ComfyUI's initial noise: a fresh white draw per step, like k-diffusion's noise samplers.
        white = torch.randn(tuple(x.shape), generator=torch.Generator().manual_seed(call_seed))
        noise = pyramid_noise(white, call_seed, iterations, discount, offset_strength)
        return noise.to(device=x.device, dtype=x.dtype)
    return noise_sampler


class SNRTPyramidNoiseSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SNRTPyramidNoiseSampler",
            display_name="Pyramid Noise Sampler",
            category="sampling/custom_sampling/samplers",
            description=DESCRIPTION_SOURCE + " Wraps an ancestral or SDE sampler so the noise it adds at every step "
            "is pyramid noise too. Deterministic samplers (euler, dpmpp_2m, …) add no noise and are refused.",
            inputs=[io.Sampler.Input("sampler", tooltip="From KSamplerSelect: an ancestral or SDE sampler "
                                     "(euler_ancestral, dpmpp_2m_sde, dpmpp_sde, …).")] + noise_inputs()[1:],
            outputs=[io.Sampler.Output(tooltip="The same sampler drawing pyramid noise; its seed is the sampling seed.")],
        )

    @classmethod
    def execute(cls, sampler, iterations, discount, offset_strength) -> io.NodeOutput:
        return io.NodeOutput(with_noise_sampler(
            sampler, lambda x, seed: pyramid_noise_sampler(x, seed, iterations, discount, offset_strength),
            "Pyramid Noise Sampler"))


class SNRTPyramidLatent(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SNRTPyramidLatent",
            display_name="Pyramid Noise Latent",
            category="latent",
            description=DESCRIPTION_SOURCE + " Returns the latent already noised to the first sigma of the given "
            "schedule, scaled exactly as ComfyUI scales its own noise (× σ, or × √(1+σ²) from the model's σ_max), "
            "for KSamplerAdvanced with add_noise 'disable' and the same scheduler, steps and start_at_step.",
            inputs=[
                io.Model.Input("model", tooltip="The model you sample with (its σ table and latent format)."),
                io.Latent.Input("latent", tooltip="The clean latent (Empty Latent Image for text-to-image)."),
                io.Combo.Input("scheduler", options=scheduler_names(), default="karras",
                               tooltip="Same as KSamplerAdvanced's scheduler."),
                io.Int.Input("steps", default=28, min=1, max=10000, tooltip="Same as KSamplerAdvanced's steps."),
                io.Int.Input("start_at_step", default=0, min=0, max=10000,
                             tooltip="Same as KSamplerAdvanced's start_at_step; the noise level is that step's σ."),
            ] + noise_inputs(),
            outputs=[io.Latent.Output(tooltip="The pre-noised latent; sample it with add_noise disabled.")],
        )

    @classmethod
    def execute(cls, model, latent, scheduler, steps, start_at_step, seed, iterations, discount,
                offset_strength) -> io.NodeOutput:
        who = "Pyramid Noise Latent"
        model_sampling = model.get_model_object("model_sampling")
        if is_flow_model(model_sampling):
            raise SNRToolkitError(f"{who}: flow models (SD3, Flux) mix noise and latent as σ·n + (1−σ)·x, which "
                                  "KSamplerAdvanced re-applies to a pre-noised latent; use 'Pyramid Noise' with "
                                  "SamplerCustomAdvanced instead.")
        if start_at_step >= steps:
            raise SNRToolkitError(f"{who}: start_at_step ({start_at_step}) must be below steps ({steps}).")
        require("noise", who)
        sigmas = calculate_sigmas(model_sampling, scheduler, steps)
        sigma = float(sigmas[start_at_step])
        samples = fix_empty_latent_channels(model, latent["samples"])
        noise = comfy_pyramid_noise(samples, seed, iterations, discount, offset_strength,
                                    latent.get("batch_index"), who)
        sigma_max = float(model_sampling.sigma_max)
        max_denoise = math.isclose(sigma_max, sigma, rel_tol=1e-05) or sigma > sigma_max  # as ComfyUI's KSAMPLER
        # ComfyUI adds noise to the processed latent (latent_format.process_in); do the same, then map back.
        noised = model_sampling.noise_scaling(torch.tensor(sigma), noise, model.model.process_latent_in(samples),
                                              max_denoise)
        out = dict(latent)
        out["samples"] = model.model.process_latent_out(noised)
        return io.NodeOutput(out)
