"""SNRTPreviewSigmas and SNRTPreviewNoise (IMAGE): look at a schedule or a noise before sampling."""
from __future__ import annotations

import numpy as np
import torch

from comfy_api.latest import io

from ..internals import require
from ..internals.model_sampling import snr_form
from ..internals.noise import prepare_noise
from ..schedules.plot import plot_noise, plot_sigmas


def image_tensor(image) -> torch.Tensor:
    """A PIL RGB image as ComfyUI's IMAGE: (1, H, W, 3) floats in 0…1."""
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).unsqueeze(0)


class SNRTPreviewSigmas(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SNRTPreviewSigmas",
            display_name="Preview Sigmas",
            category="sampling/custom_sampling/sigmas",
            description=("Plots one or two schedules: σ per step on a log axis, and log-SNR from the connected "
                         "model's own parameterisation: −2·ln σ for discrete and EDM models (SD1, SDXL, ε or v), "
                         "2·ln((1−σ)/σ) for flow models (SD3, Flux, Wan); with no model connected −2·ln σ is "
                         "assumed. The legend names the formula each curve used. A terminal step (σ₀ far above "
                         "σ₁, the finite stand-in for ∞ on ZTSNR models) is marked. Connect the IMAGE to Preview "
                         "Image."),
            inputs=[
                io.Sigmas.Input("sigmas", tooltip="A schedule (blue)."),
                io.Sigmas.Input("sigmas_b", optional=True, tooltip="A second schedule to compare (orange)."),
                io.String.Input("label", default="A", tooltip="Legend for the first schedule."),
                io.String.Input("label_b", default="B", tooltip="Legend for the second schedule."),
                io.Model.Input("model", optional=True,
                               tooltip="The model the schedule is for: its log-SNR follows how the model mixes noise "
                               "(x₀ + σ·ε: −2·ln σ; flow, (1−σ)·x₀ + σ·ε: 2·ln((1−σ)/σ)). Unconnected: −2·ln σ, "
                               "marked as assumed in the legend."),
                io.Model.Input("model_b", optional=True,
                               tooltip="The model of the second schedule; unconnected, the first model is used."),
            ],
            outputs=[io.Image.Output(tooltip="The plot, 960×400.")],
        )

    @classmethod
    def execute(cls, sigmas, label, label_b, sigmas_b=None, model=None, model_b=None) -> io.NodeOutput:
        schedules = [s.detach().cpu() for s in ([sigmas] + ([sigmas_b] if sigmas_b is not None else []))]
        for s in schedules:
            if len(s) < 2 or not bool((s[:-1] > 0).all()):
                raise ValueError(f"Preview Sigmas: a schedule needs at least two sigmas, positive but the last; "
                                 f"got {s.tolist()[:8]}")
        forms, scales, sources = [], [], []
        for m in [model, model_b if model_b is not None else model][: len(schedules)]:
            form, scale, source = log_snr_form(m)
            forms.append(form)
            scales.append(scale)
            sources.append(source)
        image, _ = plot_sigmas(schedules, [label, label_b], forms=forms, noise_scales=scales, sources=sources)
        return io.NodeOutput(image_tensor(image))


def log_snr_form(model) -> tuple[str | None, float, str]:
    """(form, noise scale, legend note) of a model's log-SNR for plot_sigmas; form None = −2·ln σ assumed."""
    if model is None:
        return None, 1.0, "assumed, no model connected"
    require("model_sampling", "Preview Sigmas")
    model_sampling = model.get_model_object("model_sampling")
    form = snr_form(model_sampling)
    if form is None:
        return None, 1.0, f"assumed: {type(model_sampling).__name__}'s noise mixing is not known"
    scale = float(getattr(model_sampling, "noise_scale", 1.0)) if form == "flow" else 1.0
    return form, scale, "from the model"


class SNRTPreviewNoise(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SNRTPreviewNoise",
            display_name="Preview Noise",
            category="sampling/custom_sampling/noise",
            description=("Shows the first sample of a NOISE (e.g. Pyramid Noise) for a latent, and its radial power "
                         "spectrum against white noise: pyramid and offset noise raise the low frequencies (left "
                         "end), which is what lets sampling change mean colour and large shapes. Use it to choose "
                         "a discount."),
            inputs=[
                io.Noise.Input("noise", tooltip="The noise to look at (Pyramid Noise, RandomNoise, …)."),
                io.Latent.Input("latent", tooltip="A latent of the size you will sample (only its shape is used)."),
            ],
            outputs=[io.Image.Output(tooltip="The plot, 800×400.")],
        )

    @classmethod
    def execute(cls, noise, latent) -> io.NodeOutput:
        samples = latent["samples"]
        if samples.ndim == 5:  # video latents: show the first frame
            samples = samples[:, :, 0]
        drawn = noise.generate_noise({"samples": samples[:1]})[0]
        require("noise", "Preview Noise")
        reference = prepare_noise(torch.zeros((1, *samples.shape[1:])), 0)[0]  # ComfyUI's own white noise
        return io.NodeOutput(image_tensor(plot_noise(drawn.float().cpu(), reference)))
