"""The ideal model inside the real ComfyUI: a real SDXL model object (its schedule, latent format
and ZTSNR / v-pred flags as the loader sets them) whose network call is replaced, through ComfyUI's
own model-function wrapper, by the Gaussian mixture's exact denoiser. Sampling runs through
SamplerCustomAdvanced with ComfyUI's schedulers and samplers and the pack's nodes."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from tools import host

from tools.ideal_model import GaussianMixture, mode_means  # noqa: E402

LATENT_CHANNELS = 4
PIXELS_PER_CELL = 8


def start_comfyui():
    """ComfyUI's `nodes` module with this pack loaded by ComfyUI's own loader (CPU)."""
    nodes = host.start_in_process(Path(os.environ["SNRT_COMFYUI"]), host.make_base_directory())
    torch.set_grad_enabled(False)
    import comfy.utils
    comfy.utils.set_progress_bar_enabled(False)  # one progress bar per run of the tool, not one per sample
    return nodes


def mixture_for(pixels: int, contrast: float = 0.5, spread: float = 0.5, channels: int = LATENT_CHANNELS) -> GaussianMixture:
    side = pixels // PIXELS_PER_CELL
    return GaussianMixture(mode_means(channels, side, side, contrast), spread)


def ideal_sdxl(mixture: GaussianMixture, ztsnr: bool):
    """An SDXL ModelPatcher (v-pred + ZTSNR as NoobAI-style files, or plain eps) that denoises exactly."""
    from tools import tiny_models
    model = tiny_models.tiny_sdxl(v_pred=ztsnr, ztsnr=ztsnr)
    model.set_model_unet_function_wrapper(lambda apply_model, args: mixture.denoise(args["input"], args["timestep"]))
    return model


def ideal_sd3(mixture: GaussianMixture):
    """An SD3 ModelPatcher (rectified flow, ComfyUI's shift 3.0 at 1024²) that denoises exactly: the wrapper
    stands in for apply_model, which returns the denoised x₀ (CONST's xₜ − σ·v) for xₜ at σ = t ∈ (0, 1]."""
    from tools import tiny_models
    model = tiny_models.tiny_sd3_medium(num_blocks=1, depth=1)
    model.set_model_unet_function_wrapper(lambda apply_model, args: mixture.denoise_flow(args["input"],
                                                                                         args["timestep"]))
    return model


class Runner:
    """Runs named schedule configurations on the ideal model through ComfyUI."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.node = nodes.NODE_CLASS_MAPPINGS

    def sigmas(self, model, scheduler: str, steps: int):
        return self.node["BasicScheduler"].execute(model, scheduler, steps, 1.0)[0]

    def scale(self, model, pixels: int):
        return self.node["SNRTSigmaMaxScale"].execute(model, pixels, pixels, 0, None)[0]

    def sample(self, model, sigmas, batch: int, pixels: int, seed: int = 0, sampler: str = "dpmpp_2m",
               fill: float = 0.0):
        from tools import tiny_models
        side = pixels // PIXELS_PER_CELL
        conditioning = tiny_models.sdxl_conditioning(1)
        guider = self.node["CFGGuider"].execute(model, conditioning, conditioning, 1.0)[0]
        noise = self.node["RandomNoise"].execute(seed)[0]
        sampler_object = self.node["KSamplerSelect"].execute(sampler)[0]
        # `fill` ≠ 0 keeps ComfyUI from widening an all-zero ("empty") latent to the model's channel count.
        latent = {"samples": torch.full((batch, LATENT_CHANNELS, side, side), fill)}
        out = self.node["SamplerCustomAdvanced"].execute(noise, guider, sampler_object, sigmas, latent)[0]["samples"]
        # The sampler hands back process_latent_out(x) (÷ 0.13025 on SDXL); the mixture lives in model space.
        return model.model.process_latent_in(out)

    def configurations(self, mixture: GaussianMixture, pixels: int, steps: int) -> dict:
        """name → (model, sigmas) for the schedules the demo compares."""
        plain, ztsnr = ideal_sdxl(mixture, ztsnr=False), ideal_sdxl(mixture, ztsnr=True)
        scaled = self.scale(ztsnr, pixels)
        return {
            "truncated: plain model, karras from sigma_max 14.6": (plain, self.sigmas(plain, "karras", steps)),
            "ZTSNR model, ComfyUI karras": (ztsnr, self.sigmas(ztsnr, "karras", steps)),
            "ZTSNR model, ComfyUI normal": (ztsnr, self.sigmas(ztsnr, "normal", steps)),
            "ZTSNR model, ComfyUI simple": (ztsnr, self.sigmas(ztsnr, "simple", steps)),
            "ZTSNR model, ours: ztsnr_exponential": (ztsnr, self.sigmas(ztsnr, "ztsnr_exponential", steps)),
            "ZTSNR model, ours + Scale sigma_max by Resolution": (scaled, self.sigmas(scaled, "ztsnr_exponential", steps)),
        }
