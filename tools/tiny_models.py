"""Tiny random-weight instances of real ComfyUI model classes (host tests only)."""
from __future__ import annotations

import torch

import comfy.model_patcher
import comfy.supported_models

#: SDXL's UNet topology (3 levels, linear transformers, 2048-d context, 2816-d ADM) at toy width.
TINY_SDXL_UNET = dict(
    use_checkpoint=False, image_size=32, in_channels=4, out_channels=4, model_channels=32,
    num_res_blocks=[1, 1, 1], channel_mult=[1, 2, 4], transformer_depth=[0, 1, 1],
    transformer_depth_output=[0, 0, 1, 1, 1, 1], transformer_depth_middle=1, use_spatial_transformer=True,
    use_linear_in_transformer=True, legacy=False, context_dim=2048, adm_in_channels=2816,
    num_classes="sequential", use_temporal_attention=False, use_temporal_resblock=False,
)


def randomize(module: torch.nn.Module, seed: int, std: float = 0.02) -> None:
    """Seeded N(0, std²) weights. ComfyUI's layers skip init and some buffers (MMDiT's pos_embed) are
    torch.empty, filled by a checkpoint; without this they hold whatever memory had, NaN at times."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in list(module.parameters()) + [b for b in module.buffers() if b.is_floating_point()]:
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * std)


def tiny_sdxl(v_pred: bool = True, ztsnr: bool = True, seed: int = 0, weight_std: float = 0.02) -> comfy.model_patcher.ModelPatcher:
    """An SDXL model built as ComfyUI's loader builds one; the checkpoint's `v_pred` / `ztsnr`
    marker keys go through SDXL.model_type exactly as a NoobAI-style file's would."""
    config = comfy.supported_models.SDXL(TINY_SDXL_UNET)
    config.unet_config["num_head_channels"] = 16
    config.set_inference_dtype(torch.float32, None)
    markers = {}
    if v_pred:
        markers["v_pred"] = torch.tensor([])
    if ztsnr:
        markers["ztsnr"] = torch.tensor([])
    model = config.get_model(markers, "")
    randomize(model.diffusion_model, seed, weight_std)
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)


def sdxl_conditioning(batch: int = 1, seed: int = 1, std: float = 0.1):
    """A CONDITIONING list as CLIPTextEncode gives for SDXL (2048-d tokens, 1280-d pooled). With random
    0.02-std weights the prompt barely moves the output at std 0.1; raise `std` where that must show."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randn(batch, 77, 2048, generator=generator) * std
    pooled = torch.randn(batch, 1280, generator=generator) * std
    return [[tokens, {"pooled_output": pooled}]]


def tiny_sd3_medium(num_blocks: int = 24, depth: int = 2, seed: int = 0) -> comfy.model_patcher.ModelPatcher:
    """SD 3.5 Medium's MMDiT topology (RMS qk-norm, MMDiT-X self-attention in blocks 0–12, 2048-d
    pooled, 4096-d context) with `num_blocks` joint blocks at width 64·depth."""
    unet = dict(
        in_channels=16, out_channels=16, patch_size=2, depth=depth, num_blocks=num_blocks, input_size=None,
        adm_in_channels=2048, pos_embed_scaling_factor=None, pos_embed_max_size=32, num_patches=32 * 32,
        context_embedder_config={"target": "torch.nn.Linear", "params": {"in_features": 4096, "out_features": 64 * depth}},
        qk_norm="rms", x_block_self_attn_layers=list(range(min(13, num_blocks))),
    )
    config = comfy.supported_models.SD3(unet)
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({}, "")
    randomize(model.diffusion_model, seed)
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)
