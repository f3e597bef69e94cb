"""Tiny random-weight instances of real ComfyUI model classes (host tests only), and the helpers the
tiny DiT builders share (tools/tiny_dits*.py)."""
from __future__ import annotations

import dataclasses
import inspect

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


# ------------------------------------------------------------------- shared by the tiny DiT builders

CPU = torch.device("cpu")


def build_tiny(config_class, unet_config: dict, seed: int, weight_std: float = 0.02,
               state_dict: dict | None = None) -> comfy.model_patcher.ModelPatcher:
    """As ComfyUI's loader: the config class (its matching keys first, as detection gives them) → model;
    `state_dict` holds what the config's get_model loads outside the diffusion model (e.g. Stable Audio's
    seconds embedders)."""
    config = config_class({**config_class.unet_config, **unet_config})
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model(state_dict or {}, "")
    randomize(model.diffusion_model, seed, weight_std)
    model.eval()
    return comfy.model_patcher.ModelPatcher(model, load_device=CPU, offload_device=CPU)


def accepted_names(callable_or_dataclass) -> set[str] | None:
    """Parameter names a constructor (or dataclass) accepts; None where it takes **kwargs freely."""
    if dataclasses.is_dataclass(callable_or_dataclass):
        return {f.name for f in dataclasses.fields(callable_or_dataclass)}
    params = inspect.signature(callable_or_dataclass).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return set(params)


def only_accepted(config: dict, target) -> dict:
    """The defaults `config` less the keys this host's `target` does not take (e.g. FluxParams.txt_ids_dims
    is new in 0.33 and required there; 0.3.75's FluxParams rejects it). Callers' overrides go in after,
    unfiltered, so a misspelt one fails loudly."""
    names = accepted_names(target)
    if names is None:
        return config
    return {k: v for k, v in config.items() if k in names}


def seeded_randn(generator, *shape, std=1.0):
    return torch.randn(*shape, generator=generator) * std


def seeded_latent(seed: int, *shape) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
