"""σ_max that grows with the canvas (pure Python, never imports comfy).

NovelAI Diffusion V3 (arXiv 2409.15997): "when the canvas side doubles, σ_max should
double", because a larger canvas carries more redundant low-frequency signal and needs more
noise to reach the same SNR. The side of a non-square canvas is √(width·height).
"""
from __future__ import annotations

import math

#: The resolution each model family was trained at (pixels per side).
BASE_SIDE_BY_FAMILY = {"SD1": 512, "SD2": 768, "SDXL": 1024}
#: Flow-matching families: the canvas (width, height) in pixels their configured shift belongs to, per
#: frame for video, each with the published source it is read from (FLOW_BASE_SOURCES). The configured
#: shift itself is ComfyUI's (`sampling_settings` in comfy/supported_models.py); where no published
#: config ties a canvas to it the family is in UNVERIFIED_BASE, and the node's tooltip says so.
FLOW_BASE_CANVAS = {
    "SD3": (1024, 1024), "Flux": (1024, 1024), "Flux Schnell": (1024, 1024), "Flux 2": (1024, 1024),
    "AuraFlow": (1024, 1024), "HiDream": (1024, 1024), "Lumina 2": (1024, 1024), "Z-Image": (1024, 1024),
    "Qwen-Image": (1328, 1328), "HunyuanImage 2.1": (2048, 2048),
    "Wan 2.1": (1280, 720), "Wan 2.2 5B": (1280, 704), "HunyuanVideo": (1280, 720), "LTX-Video": (768, 512),
    "Mochi": (848, 480),
}
FLOW_BASE_SOURCES = {
    "SD3": "SD3 paper (Esser et al. 2024, arXiv 2403.03206) §5.3.2, shift 3 for the 1024² model; "
           "stabilityai/stable-diffusion-3.5-medium scheduler/scheduler_config.json: shift 3.0 (fixed); "
           "diffusers StableDiffusion3Pipeline default 1024² (default_sample_size 128 × VAE 8)",
    "Flux": "black-forest-labs/flux src/flux/sampling.py get_schedule: μ 0.5 at 256 image tokens to 1.15 at 4096 "
            "(one token per 16×16 pixels, so 4096 = 1024²); FLUX.1-dev scheduler_config.json: base_image_seq_len "
            "256, max_image_seq_len 4096, base_shift 0.5, max_shift 1.15, use_dynamic_shifting true",
    "Flux Schnell": "UNVERIFIED: black-forest-labs/flux cli.py samples schnell unshifted at every size "
                    "(get_schedule(..., shift=name != 'flux-schnell'); scheduler_config.json shift 1.0, no dynamic "
                    "shifting), so no published canvas belongs to its α 1; 1024² is Flux dev's",
    "Flux 2": "black-forest-labs/flux2 src/flux2/sampling.py compute_empirical_mu (as copied into diffusers' "
              "Flux2Pipeline, whose defaults are 1024² and 50 steps): μ 2.02 = ComfyUI's configured μ at 4096 "
              "tokens (1024², 16× VAE, patch 1) and 50 steps",
    "AuraFlow": "diffusers AuraFlowPipeline (fal/AuraFlow): height and width default to 1024 'for best results' "
                "(the shift, ComfyUI's α 1.73, is fixed)",
    "HiDream": "HiDream-ai/HiDream-I1 inference.py: shift 3.0 for full and fast (6.0 for dev), "
               "use_dynamic_shifting False, default resolution 1024 × 1024",
    "Lumina 2": "UNVERIFIED canvas: Alpha-VLLM/Lumina-Image-2.0 scheduler/scheduler_config.json gives shift 6.0 "
                "with no dynamic shifting and no canvas; diffusers' Lumina2Pipeline defaults to the transformer's "
                "sample_size × 8 (1024 with its fallback 128), not read from the published transformer config",
    "Z-Image": "diffusers ZImagePipeline (Tongyi-MAI/Z-Image-Turbo): height and width default to 1024 (the shift, "
               "ComfyUI's α 3.0, is fixed)",
    "Qwen-Image": "UNVERIFIED: QwenLM/Qwen-Image README gives the 1:1 canvas 1328 × 1328, but its diffusers "
                  "scheduler shifts by canvas (base_shift 0.5 at 256 tokens, max_shift 0.9 at 8192, exponential, as "
                  "copies of Qwen/Qwen-Image's scheduler_config.json give it), which at 1328² is μ ≈ 0.83, not "
                  "ComfyUI's configured 1.15: no published canvas belongs to μ 1.15",
    "HunyuanImage 2.1": "Tencent-Hunyuan/HunyuanImage-2.1 README: 'only supports 2K image generation (e.g. 2048x2048 "
                        "for 1:1 images)', shift 5 (4 for the distilled model); hunyuanimage_pipeline.py shift 5",
    "Wan 2.1": "Wan-Video/Wan2.1 generate.py: --size default 1280*720 for the 14B models, sample_shift 5.0 (3.0 for "
               "480p i2v); ComfyUI configures 8.0. T2V-1.3B and I2V-480P were trained at 832×480 (base_side 632)",
    "Wan 2.2 5B": "Wan-Video/Wan2.2 wan/configs/wan_ti2v_5B.py: sample_shift 5.0, vae_stride 16; SUPPORTED_SIZES "
                  "ti2v-5B: 1280*704 and 704*1280",
    "HunyuanVideo": "Tencent/HunyuanVideo README: --video-size 720 1280 and --flow-shift 7.0 (the defaults; 720p "
                    "recommended)",
    "LTX-Video": "ComfyUI's ModelSamplingLTXV rule (diffusers' LTX scheduler_config.json: base_image_seq_len 1024 at "
                 "base_shift 0.95, max_image_seq_len 4096 at max_shift 2.05): ComfyUI's configured μ 2.37 is that "
                 "rule at 768×512, 97 frames (24·16·13 latent tokens)",
    "Mochi": "diffusers MochiPipeline (genmo/mochi-1-preview): default_height 480, default_width 848 'for the best "
             "results'; ComfyUI's α 6.0 is its own (Genmo's reference samples a linear-quadratic schedule)",
}
#: Families whose base canvas no published config ties to the configured shift (set base_side if you know it).
UNVERIFIED_BASE = tuple(family for family, source in FLOW_BASE_SOURCES.items() if source.startswith("UNVERIFIED"))
BASE_SIDE_BY_FAMILY.update({family: math.sqrt(w * h) for family, (w, h) in FLOW_BASE_CANVAS.items()})
#: SD-family VAEs turn 8×8 pixels into one latent cell.
LATENT_PIXELS_PER_CELL = 8


def canvas_side(width: int | float, height: int | float) -> float:
    """Geometric-mean side √(w·h) of a canvas, in the same unit as width and height."""
    if not (width > 0 and height > 0):
        raise ValueError(f"width and height must be positive, got {width}×{height}")
    return math.sqrt(float(width) * float(height))


def resolution_factor(width: int | float, height: int | float, base_side: int | float) -> float:
    """side / base side: the factor NovelAI's rule multiplies σ_max by."""
    if not base_side > 0:
        raise ValueError(f"base_side must be positive, got {base_side}")
    return canvas_side(width, height) / float(base_side)


def scaled_sigma_max(sigma_max: float, width: int | float, height: int | float, base_side: int | float) -> float:
    """σ_max × √(w·h) / base side (NovelAI V3's resolution rule)."""
    return float(sigma_max) * resolution_factor(width, height, base_side)


def latent_pixel_size(latent: dict, pixels_per_cell: int = LATENT_PIXELS_PER_CELL) -> tuple[int, int]:
    """(width, height) in pixels of a LATENT dict's samples, per frame for video (B, C, T, H, W): the last
    two dims are height and width, each cell `pixels_per_cell` pixels wide (the VAE's downscale)."""
    samples = latent["samples"]
    return samples.shape[-1] * pixels_per_cell, samples.shape[-2] * pixels_per_cell


def latent_tokens(latent: dict) -> int:
    """Latent cells per sample across frames and space (LTX-Video's token count: T·H·W)."""
    return math.prod(latent["samples"].shape[2:])
