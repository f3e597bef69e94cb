"""Tiny random-weight checkpoint files for the real ComfyUI model classes (host tests only).

The bundled workflows name the public files (NoobAI-XL-Vpred-v1.0, sd3.5_medium, clip_l, clip_g,
t5xxl_fp16). The end-to-end test writes files of those names holding the same architectures at toy
width: SDXL's UNet, SD3.5 Medium's MMDiT (24 joint blocks, MMDiT-X blocks 0–12), AutoencoderKL,
CLIP-L/CLIP-G (ComfyUI's CLIPTextModel) and T5 (ComfyUI's T5 encoder). ComfyUI's own loaders detect
models by full-size key shapes, so the fixture loader nodes build each class from the config kept
in the file's metadata and load the weights strictly. Text goes through the real tokenizers and
the real SDXL / SD3 text-encoder classes; only their widths are reduced, through the
`<name>_model_config` option ComfyUI's text encoders read.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

import comfy.ldm.models.autoencoder
import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.sdxl_clip
import comfy.supported_models
import comfy.supported_models_base
import comfy.taesd.taesd
import comfy.utils
import comfy.text_encoders.sd3_clip

METADATA_KEY = "snrt_tiny"

CLIP_L = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 3,
          "projection_dim": 32}
CLIP_G = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 3,
          "projection_dim": 32}
# SD3 concatenates CLIP and T5 tokens, padding CLIP to 4096, so T5 keeps its 4096-d output.
T5XXL = {"d_model": 4096, "d_ff": 16, "d_kv": 8, "num_heads": 2, "num_layers": 1}
TEXT_ENCODER_OPTIONS = {"clip_l_model_config": CLIP_L, "clip_g_model_config": CLIP_G, "t5xxl_model_config": T5XXL}

#: SDXL's UNet (3 levels, linear transformers, ADM = pooled CLIP-G projection + 6·256 size embedding) at
#: toy width; attention only at the deepest level keeps a 2688×1536 hires pass affordable on 2 CPU cores.
SDXL_UNET = dict(
    use_checkpoint=False, image_size=32, in_channels=4, out_channels=4, model_channels=32,
    num_res_blocks=[1, 1, 1], channel_mult=[1, 2, 4], transformer_depth=[0, 0, 1],
    transformer_depth_output=[0, 0, 0, 0, 1, 1], transformer_depth_middle=1, use_spatial_transformer=True,
    use_linear_in_transformer=True, legacy=False, context_dim=CLIP_L["hidden_size"] + CLIP_G["hidden_size"],
    adm_in_channels=CLIP_G["projection_dim"] + 6 * 256, num_classes="sequential",
    use_temporal_attention=False, use_temporal_resblock=False, num_head_channels=32,
)
#: SD 3.5 Medium's MMDiT: 24 joint blocks, RMS qk-norm, MMDiT-X self-attention in blocks 0–12, pooled =
#: CLIP-L + CLIP-G, 4096-d context; width 64 and positions for up to 1024² images.
SD3_MEDIUM_MMDIT = dict(
    in_channels=16, out_channels=16, patch_size=2, depth=1, num_blocks=24, input_size=None,
    adm_in_channels=CLIP_L["hidden_size"] + CLIP_G["projection_dim"], pos_embed_scaling_factor=None,
    pos_embed_max_size=64, num_patches=64 * 64,
    context_embedder_config={"target": "torch.nn.Linear", "params": {"in_features": 4096, "out_features": 64}},
    qk_norm="rms", x_block_self_attn_layers=list(range(13)),
)
#: SD 3.5 Large: 38 joint blocks without MMDiT-X self-attention.
SD3_LARGE_OVERRIDES = dict(num_blocks=38, x_block_self_attn_layers=[])


def vae_config(latent_channels: int) -> dict:
    """AutoencoderKL with the 8× SD/SDXL/SD3 topology (four levels) at 32 channels."""
    ddconfig = {"double_z": True, "z_channels": latent_channels, "resolution": 256, "in_channels": 3, "out_ch": 3,
                "ch": 32, "ch_mult": [1, 1, 1, 1], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0}
    return {"params": {"embed_dim": latent_channels, "ddconfig": ddconfig}}


def initialise(module: torch.nn.Module, seed: int) -> None:
    """Seeded weights at the scale training starts from (N(0, 1/fan_in), norms at 1, biases at 0), so
    activations keep their size through the stack and the image depends on the latent. ComfyUI's
    layers skip init and some buffers are torch.empty until a checkpoint fills them."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + [
                (n, b) for n, b in module.named_buffers() if b.is_floating_point()]:
            if tensor.dim() >= 2:
                fan_in = tensor[0].numel()
                std = 1.0 / math.sqrt(fan_in) if fan_in > 1 else 0.02
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * std)
            elif name.endswith("bias"):
                tensor.zero_()
            elif "norm" in name or name.endswith("scale") or name.endswith(".weight"):
                tensor.fill_(1.0)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.02)


# --- building the real classes from a config --------------------------------------------------

def _model_config(family: str, unet: dict):
    unet = dict(unet)
    head_channels = unet.pop("num_head_channels", None)
    config = {"sdxl": comfy.supported_models.SDXL, "sd3": comfy.supported_models.SD3}[family](unet)
    if head_channels is not None:  # the base config's extras would reset it to SDXL's 64
        config.unet_config["num_head_channels"] = head_channels
    config.set_inference_dtype(torch.float32, None)
    return config


def build_diffusion_model(family: str, unet: dict, markers: dict):
    """The model_base instance ComfyUI's loader would make for this family (markers: the v_pred /
    ztsnr keys a NoobAI-style file carries, read by SDXL.model_type)."""
    return _model_config(family, unet).get_model(markers, "")


def build_vae(config: dict, state_dict: dict | None = None) -> comfy.sd.VAE:
    if state_dict is None:
        model = comfy.ldm.models.autoencoder.AutoencoderKL(**config["params"])
        state_dict = model.state_dict()
    return comfy.sd.VAE(sd=state_dict, config=config)


def text_encoder_target(family: str):
    if family == "sdxl":
        return comfy.supported_models_base.ClipTarget(comfy.sdxl_clip.SDXLTokenizer, comfy.sdxl_clip.SDXLClipModel)
    return comfy.supported_models_base.ClipTarget(comfy.text_encoders.sd3_clip.SD3Tokenizer,
                                                  comfy.text_encoders.sd3_clip.sd3_clip())


def build_clip(family: str, parts: dict[str, dict]) -> comfy.sd.CLIP:
    """A real comfy.sd.CLIP (tokenizers and encoder classes as ComfyUI's loaders pick them) with
    each part's weights loaded strictly. `parts` maps clip_l / clip_g / t5xxl to state dicts."""
    parameters = sum(t.numel() for sd in parts.values() for t in sd.values())
    clip = comfy.sd.CLIP(text_encoder_target(family), parameters=parameters,
                         model_options=dict(TEXT_ENCODER_OPTIONS))
    for name, state_dict in parts.items():
        getattr(clip.cond_stage_model, name).load_state_dict(state_dict, strict=True)
    return clip


# --- writing and reading files ---------------------------------------------------------------

def _prefixed(prefix: str, state_dict: dict) -> dict:
    return {prefix + k: v.detach().to(torch.float32).contiguous() for k, v in state_dict.items()}


def _unprefixed(prefix: str, state_dict: dict) -> dict:
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def write_checkpoint(path: Path, family: str, seed: int = 0, v_pred: bool = False, ztsnr: bool = False,
                     **unet_overrides) -> None:
    """An all-in-one checkpoint: diffusion model, VAE and (SDXL) both CLIPs, as CheckpointLoaderSimple
    reads; `v_pred` / `ztsnr` become the empty marker keys NoobAI's V-Pred file carries; `unet_overrides`
    change the diffusion model's config (SD 3.5 Large: SD3_LARGE_OVERRIDES)."""
    unet = dict(SDXL_UNET if family == "sdxl" else SD3_MEDIUM_MMDIT, **unet_overrides)
    latent_channels = 4 if family == "sdxl" else 16
    markers = {k: torch.zeros(0) for k, on in (("v_pred", v_pred), ("ztsnr", ztsnr)) if on}
    model = build_diffusion_model(family, unet, markers)
    initialise(model.diffusion_model, seed)
    vae = comfy.ldm.models.autoencoder.AutoencoderKL(**vae_config(latent_channels)["params"])
    initialise(vae, seed + 1)
    tensors = {**_prefixed("model.diffusion_model.", model.diffusion_model.state_dict()),
               **_prefixed("first_stage_model.", vae.state_dict()), **markers}
    if family == "sdxl":
        clip = build_clip("sdxl", {})
        for i, name in enumerate(("clip_l", "clip_g")):
            part = getattr(clip.cond_stage_model, name)
            initialise(part, seed + 2 + i)
            tensors.update(_prefixed(f"text_encoders.{name}.", part.state_dict()))
    meta = {"family": family, "unet": unet, "vae": vae_config(latent_channels)}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(meta)})


# --- files ComfyUI's own loader reads ---------------------------------------------------------
# ComfyUI detects a checkpoint's family by matching the UNet config it reads from key shapes against the
# configs in comfy.supported_models.models, which hold full-size widths. Registering two test-only configs
# for the toy widths (and a toy text encoder) lets the real load path (comfy.sd.load_checkpoint_guess_config)
# run on tiny files; the VAE is TAESD, which comfy.sd.VAE detects by its keys at its real size.

class DetectableTinySDXLClip(comfy.sdxl_clip.SDXLClipModel):
    """SDXL's CLIP-L + CLIP-G text encoder at the toy widths (ComfyUI reads `<name>_model_config`)."""

    def __init__(self, device="cpu", dtype=None, model_options={}):
        super().__init__(device=device, dtype=dtype, model_options={**model_options, **TEXT_ENCODER_OPTIONS})


class DetectableTinySDXL(comfy.supported_models.SDXL):
    unet_config = {k: v for k, v in SDXL_UNET.items() if k != "num_head_channels"}
    unet_extra_config = {"num_heads": -1, "num_head_channels": SDXL_UNET["num_head_channels"]}

    def process_clip_state_dict(self, state_dict):
        return comfy.utils.state_dict_prefix_replace(state_dict, {"text_encoders.": ""}, filter_keys=True)

    def clip_target(self, state_dict={}):
        return comfy.supported_models_base.ClipTarget(comfy.sdxl_clip.SDXLTokenizer, DetectableTinySDXLClip)


class DetectableTinySD3(comfy.supported_models.SD3):
    # ComfyUI reads an MMDiT's depth from its width (64 per unit) and does not count its blocks.
    unet_config = {"in_channels": 16, "pos_embed_scaling_factor": None, "depth": SD3_MEDIUM_MMDIT["depth"]}
    unet_extra_config = {"num_blocks": SD3_MEDIUM_MMDIT["num_blocks"]}


def register_detectable_configs() -> None:
    """Put the tiny configs first in ComfyUI's detection list (idempotent; test hosts only)."""
    models = comfy.supported_models.models
    for config in (DetectableTinySD3, DetectableTinySDXL):
        if not any(c.__name__ == config.__name__ for c in models):
            models.insert(0, config)


def detectable_tensors(family: str, seed: int = 0, text_encoders: bool = True) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint ComfyUI's loader detects once the configs are registered: the toy
    diffusion model, a TAESD VAE and (SDXL) both CLIPs under text_encoders.*; no marker keys."""
    unet = SDXL_UNET if family == "sdxl" else SD3_MEDIUM_MMDIT
    model = build_diffusion_model(family, unet, {})
    initialise(model.diffusion_model, seed)
    vae = comfy.taesd.taesd.TAESD(latent_channels=4 if family == "sdxl" else 16)
    initialise(vae, seed + 1)
    tensors = {**_prefixed("model.diffusion_model.", model.diffusion_model.state_dict()),
               **_prefixed("first_stage_model.", vae.state_dict())}
    if family == "sdxl" and text_encoders:
        clip = build_clip("sdxl", {})
        for i, name in enumerate(("clip_l", "clip_g")):
            part = getattr(clip.cond_stage_model, name)
            initialise(part, seed + 2 + i)
            tensors.update(_prefixed(f"text_encoders.{name}.", part.state_dict()))
    return tensors


def write_detectable_checkpoint(path: Path, tensors: dict, markers=(), metadata: dict | None = None) -> Path:
    """`tensors` plus empty marker tensors (`v_pred`, `ztsnr`, as NoobAI's file has) and header `metadata`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({**tensors, **{k: torch.zeros(0) for k in markers}}, str(path), metadata=metadata or None)
    return path


def write_text_encoders(folder: Path, names: dict[str, str], seed: int = 10) -> None:
    """SD3's three text encoders as separate files, `names` mapping clip_l / clip_g / t5xxl to file names."""
    clip = build_clip("sd3", {})
    folder.mkdir(parents=True, exist_ok=True)
    for i, (part_name, file_name) in enumerate(names.items()):
        part = getattr(clip.cond_stage_model, part_name)
        initialise(part, seed + i)
        if part_name == "t5xxl":  # keep the 130 MB embedding small on disk: half precision
            tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in part.state_dict().items()}
        else:
            tensors = _prefixed("", part.state_dict())
        save_file(tensors, str(folder / file_name), metadata={METADATA_KEY: json.dumps({"part": part_name})})


def _read(path: str) -> tuple[dict, dict]:
    from safetensors import safe_open
    with safe_open(path, framework="pt") as handle:
        metadata = handle.metadata() or {}
    if METADATA_KEY not in metadata:
        raise ValueError(f"{path} is not a tiny test checkpoint (no {METADATA_KEY!r} metadata)")
    return load_file(path), json.loads(metadata[METADATA_KEY])


def load_checkpoint(path: str):
    """(MODEL, CLIP or None, VAE) from a file written by write_checkpoint."""
    tensors, meta = _read(path)
    family = meta["family"]
    markers = {k: tensors[k] for k in ("v_pred", "ztsnr") if k in tensors}
    model = build_diffusion_model(family, meta["unet"], markers)
    model.diffusion_model.load_state_dict(_unprefixed("model.diffusion_model.", tensors), strict=True)
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=comfy.model_management.get_torch_device(),
                                               offload_device=comfy.model_management.unet_offload_device())
    vae = build_vae(meta["vae"], _unprefixed("first_stage_model.", tensors))
    clip = None
    if family == "sdxl":
        clip = build_clip("sdxl", {n: _unprefixed(f"text_encoders.{n}.", tensors) for n in ("clip_l", "clip_g")})
    return patcher, clip, vae


def load_text_encoders(paths: list[str]) -> comfy.sd.CLIP:
    """SD3's CLIP from the three files of write_text_encoders, in any order."""
    parts = {}
    for path in paths:
        tensors, meta = _read(path)
        parts[meta["part"]] = {k: v.to(torch.float32) for k, v in tensors.items()}
    return build_clip("sd3", parts)
