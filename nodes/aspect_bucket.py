"""SNRTAspectBucket (LATENT, INT, INT): an empty latent at the nearest NovelAI/kohya bucket."""
from __future__ import annotations

import torch

from comfy_api.latest import io

from ..internals.model_management import intermediate_device
from ..schedules.buckets import nearest_bucket

LATENT_KINDS = {"SD1 / SDXL (4 channels)": 4, "SD3 / SD3.5 / Flux (16 channels)": 16}


class SNRTAspectBucket(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SNRTAspectBucket",
            display_name="Empty Latent (Aspect Bucket)",
            category="latent",
            description=(
                "NovelAI's aspect-ratio bucketing (kohya sd-scripts' bucket list): picks the trained bucket nearest "
                "your aspect ratio within a pixel budget, sides multiples of 64, and returns an empty latent of "
                "that size with its width and height. Pair it with 'Scale σ_max by Resolution' above the training "
                "budget."),
            inputs=[
                io.Int.Input("aspect_width", default=2, min=1, max=100, tooltip="Aspect ratio, width part (2 in 2:3)."),
                io.Int.Input("aspect_height", default=3, min=1, max=100,
                             tooltip="Aspect ratio, height part (3 in 2:3)."),
                io.Int.Input("pixel_budget", default=1024 * 1024, min=256 * 256, max=4096 * 4096, step=64 * 64,
                             tooltip="Most pixels per image: 1024² for SDXL/SD3.5, 512² for SD1."),
                io.Combo.Input("latent_type", options=list(LATENT_KINDS), default=list(LATENT_KINDS)[0],
                               tooltip="Latent channels of your model family."),
                io.Int.Input("batch_size", default=1, min=1, max=4096, tooltip="Images per batch."),
            ],
            outputs=[io.Latent.Output(tooltip="Zeros of (batch, channels, height/8, width/8)."),
                     io.Int.Output("width", display_name="width", tooltip="Bucket width in pixels (multiple of 64)."),
                     io.Int.Output("height", display_name="height",
                                   tooltip="Bucket height in pixels (multiple of 64).")],
        )

    @classmethod
    def execute(cls, aspect_width, aspect_height, pixel_budget, latent_type, batch_size) -> io.NodeOutput:
        side = int(pixel_budget ** 0.5)
        width, height = nearest_bucket(aspect_width, aspect_height, pixel_budget, min_side=max(256, side // 4),
                                       max_side=side * 2)
        samples = torch.zeros([batch_size, LATENT_KINDS[latent_type], height // 8, width // 8],
                              device=intermediate_device())
        return io.NodeOutput({"samples": samples}, width, height)
