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


def mixture_for(pixels: int, contrast: float = 0.5, spread: float = 0.5) -> GaussianMixture:
    side = pixels // PIXELS_PER_CELL
    return GaussianMixture(mode_means(LATENT_CHANNELS, side, side, contrast), spread)


def ideal_sdxl(mixture: GaussianMixture, ztsnr: bool):
    """An SDXL ModelPatcher (v-pred + ZTSNR as NoobAI-style files, or plain eps) that denoises exactly."""
    from tools import tiny_models
    model = tiny_models.tiny_sdxl(v_pred=ztsnr, ztsnr=ztsnr)
    model.set_model_unet_function_wrapper(lambda apply_model, args: mixture.denoise(args["input"], args["timestep"]))
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

    def sample(self, model, sigmas, batch: int, pixels: int, seed: int = 0, sampler: str = "dpmpp_2m"):
        from tools import tiny_models
        side = pixels // PIXELS_PER_CELL
        conditioning = tiny_models.sdxl_conditioning(1)
        guider = self.node["CFGGuider"].execute(model, conditioning, conditioning, 1.0)[0]
        noise = self.node["RandomNoise"].execute(seed)[0]
        sampler_object = self.node["KSamplerSelect"].execute(sampler)[0]
        latent = {"samples": torch.zeros(batch, LATENT_CHANNELS, side, side)}
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
