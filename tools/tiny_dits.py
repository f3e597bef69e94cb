"""Tiny random-weight instances of ComfyUI's real DiT model classes (host tests only).

Each family has three functions:

    tiny_<family>(seed=0, weight_std=0.02, **overrides) -> ModelPatcher   the real diffusion-model class,
        built through the family's config class in comfy.supported_models (so model_sampling, latent
        format and extra_conds are ComfyUI's own), at toy width (64, 2 heads) but with the real block
        count (Mochi: 24 of 48, see tiny_mochi); weights seeded N(0, weight_std²) by
        tools.tiny_models.randomize; `overrides` update the unet config, e.g.
        ``tiny_flux(depth=2, depth_single_blocks=4)`` for fewer blocks
    conditioning_<family>(batch=1, seed=1, std=1.0)      a CONDITIONING list ``[[cross_attn, {extras}]]``
        with the shapes that family's model_base.extra_conds expects at that width
    latent_<family>(seed=0, batch=1)                     a small latent (video families: B, C, T, H, W)

``FAMILIES`` maps each family's name to ``(builder, conditioning, latent)``: the ten image and video
families here, and those of tools/tiny_dits_media.py (Stable Audio Open 1.0 and 3, Hunyuan3D, MiniMax H3, LTX-2) and
tools/tiny_dits_recent.py (families ComfyUI added after 0.3.75; theirs, Stable Audio 3's, MiniMax H3's and
LTX-2's fail on an older host). The text-side widths
(cross-attention and pooled dims) are the real ones — only an input projection reads them — so a
conditioning tensor has the shape the real text encoder gives, with 8 tokens; Mochi's T5 width and
HunyuanDiT's BERT/mT5 widths are toy (their text poolers would be ~50M parameters at the real ones).

Works on ComfyUI 0.3.75 and 0.33.0; where constructor signatures differ the builders pass only what
the host's class accepts.
"""
from __future__ import annotations

import torch

import comfy.model_patcher
import comfy.supported_models

from tools import tiny_dits_media as media, tiny_dits_recent as recent
from tools.tiny_models import build_tiny, only_accepted, seeded_latent, seeded_randn


# --------------------------------------------------------------------------------------------- Flux

def tiny_flux(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """Flux dev (comfy.ldm.flux.model.Flux): 19 double + 38 single blocks, guidance embedding, 768-d
    pooled CLIP-L vector, 4096-d T5 context; width 64, 2 heads (RoPE axes 4+14+14)."""
    import comfy.ldm.flux.model
    unet = dict(in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096, hidden_size=64,
                mlp_ratio=4.0, num_heads=2, depth=19, depth_single_blocks=38, axes_dim=[4, 14, 14],
                theta=10000, patch_size=2, qkv_bias=True, guidance_embed=True, txt_ids_dims=[],
                yak_mlp=False, txt_norm=False)
    unet = only_accepted(unet, comfy.ldm.flux.model.FluxParams)
    unet.update(overrides)
    return build_tiny(comfy.supported_models.Flux, unet, seed, weight_std)


def tiny_flux2(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """Flux 2 dev (comfy.supported_models.Flux2: its μ 2.02 and 16× VAE latent format, 128 latent channels,
    patch 1, global modulation, SiLU-gated MLPs, no biases) at width 64, 2 heads (RoPE axes 4 × 8), with
    one double and one single block (the real model has 8 and 48: the resolution tests read only its
    sampling settings). Only for model-level tests: no conditioning builder."""
    import comfy.ldm.flux.model
    unet = dict(in_channels=128, out_channels=128, vec_in_dim=None, context_in_dim=4096,
                hidden_size=64, mlp_ratio=3.0, num_heads=2, depth=1, depth_single_blocks=1, axes_dim=[8, 8, 8, 8],
                theta=2000, patch_size=1, qkv_bias=False, guidance_embed=True, txt_ids_dims=[3],
                global_modulation=True, mlp_silu_act=True, ops_bias=False, default_ref_method="index",
                ref_index_scale=10.0, yak_mlp=False, txt_norm=False)
    unet = only_accepted(unet, comfy.ldm.flux.model.FluxParams)
    unet.update(overrides)
    return build_tiny(comfy.supported_models.Flux2, unet, seed, weight_std)


def conditioning_flux(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8, guidance: float = 3.5):
    g = torch.Generator().manual_seed(seed)
    return [[seeded_randn(g, batch, tokens, 4096, std=std),
             {"pooled_output": seeded_randn(g, batch, 768, std=std), "guidance": guidance}]]


def latent_flux(seed: int = 0, batch: int = 1) -> torch.Tensor:
    return seeded_latent(seed, batch, 16, 8, 8)


# ------------------------------------------------------------------------------------------ Wan 2.1

def tiny_wan(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """Wan 2.1 t2v 1.3B's topology (comfy.ldm.wan.model.WanModel): 30 blocks, 4096-d umT5 context,
    patch 1×2×2; width 64, 2 heads."""
    unet = dict(model_type="t2v", patch_size=(1, 2, 2), text_len=512, in_dim=16, dim=64, ffn_dim=128,
                freq_dim=256, text_dim=4096, out_dim=16, num_heads=2, num_layers=30, window_size=(-1, -1),
                qk_norm=True, cross_attn_norm=True, eps=1e-6)
    unet.update(overrides)
    return build_tiny(comfy.supported_models.WAN21_T2V, unet, seed, weight_std)


def conditioning_wan(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8):
    g = torch.Generator().manual_seed(seed)
    return [[seeded_randn(g, batch, tokens, 4096, std=std), {"pooled_output": None}]]


def latent_wan(seed: int = 0, batch: int = 1) -> torch.Tensor:
    return seeded_latent(seed, batch, 16, 2, 8, 8)


# ------------------------------------------------------------------------------------ SD3.5 Large

def tiny_sd35_large(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """SD 3.5 Large's MMDiT (comfy.ldm.modules.diffusionmodules.mmdit): 38 joint blocks, RMS qk-norm,
    no MMDiT-X self-attention, 2048-d pooled, 4096-d context; width 64 (depth=1 → 1 head)."""
    depth = overrides.pop("depth", 1)
    unet = dict(in_channels=16, out_channels=16, patch_size=2, depth=depth, num_blocks=38, input_size=None,
                adm_in_channels=2048, pos_embed_scaling_factor=None, pos_embed_max_size=32, num_patches=32 * 32,
                context_embedder_config={"target": "torch.nn.Linear",
                                         "params": {"in_features": 4096, "out_features": 64 * depth}},
                qk_norm="rms", x_block_self_attn_layers=[])
    unet.update(overrides)
    return build_tiny(comfy.supported_models.SD3, unet, seed, weight_std)


def conditioning_sd35_large(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8):
    g = torch.Generator().manual_seed(seed)
    return [[seeded_randn(g, batch, tokens, 4096, std=std), {"pooled_output": seeded_randn(g, batch, 2048, std=std)}]]


def latent_sd35_large(seed: int = 0, batch: int = 1) -> torch.Tensor:
    return seeded_latent(seed, batch, 16, 8, 8)


# ---------------------------------------------------------------------------------- HunyuanVideo

def tiny_hunyuan_video(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """HunyuanVideo (comfy.ldm.hunyuan_video.model.HunyuanVideo): 20 double + 40 single blocks, token
    refiner over 4096-d LLaVA context, 768-d pooled CLIP-L, guidance embedding, patch 1×2×2; width 64,
    2 heads (RoPE axes 8+12+12)."""
    import comfy.ldm.hunyuan_video.model
    unet = dict(in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096, hidden_size=64,
                mlp_ratio=4.0, num_heads=2, depth=20, depth_single_blocks=40, axes_dim=[8, 12, 12], theta=256,
                patch_size=[1, 2, 2], qkv_bias=True, guidance_embed=True, byt5=False, meanflow=False,
                use_cond_type_embedding=False, vision_in_dim=None, meanflow_sum=False)
    unet = only_accepted(unet, comfy.ldm.hunyuan_video.model.HunyuanVideoParams)
    unet.update(overrides)
    return build_tiny(comfy.supported_models.HunyuanVideo, unet, seed, weight_std)


def conditioning_hunyuan_video(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8, guidance: float = 6.0):
    g = torch.Generator().manual_seed(seed)
    return [[seeded_randn(g, batch, tokens, 4096, std=std),
             {"pooled_output": seeded_randn(g, batch, 768, std=std), "guidance": guidance}]]


def latent_hunyuan_video(seed: int = 0, batch: int = 1) -> torch.Tensor:
    return seeded_latent(seed, batch, 16, 2, 8, 8)


# ------------------------------------------------------------------------------------- LTX-Video

def tiny_ltxv(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """LTX-Video (comfy.ldm.lightricks.model.LTXVModel): 28 transformer blocks, 128-channel latent
    patchified 1×1×1, 4096-d T5 captions; width 64 (2 heads of 32)."""
    unet = dict(in_channels=128, cross_attention_dim=64, attention_head_dim=32, num_attention_heads=2,
                caption_channels=4096, num_layers=28)
    unet.update(overrides)
    return build_tiny(comfy.supported_models.LTXV, unet, seed, weight_std)


def conditioning_ltxv(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8, frame_rate: float = 25.0):
    g = torch.Generator().manual_seed(seed)
    # mochi_te (which LTX-Video's text encoder is) returns the T5 attention mask with the tokens.
    return [[seeded_randn(g, batch, tokens, 4096, std=std),
             {"pooled_output": None, "attention_mask": torch.ones(batch, tokens, dtype=torch.long),
              "frame_rate": frame_rate}]]


def latent_ltxv(seed: int = 0, batch: int = 1) -> torch.Tensor:
    return seeded_latent(seed, batch, 128, 2, 4, 4)


# ------------------------------------------------------------------------------------ Qwen-Image

def tiny_qwen_image(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """Qwen-Image (comfy.ldm.qwen_image.model.QwenImageTransformer2DModel): 60 dual-stream blocks,
    RMS-normed 3584-d Qwen2.5-VL context, patch 2; width 64 (2 heads of 32, RoPE axes 4+14+14)."""
    import comfy.ldm.qwen_image.model
    unet = dict(patch_size=2, in_channels=64, out_channels=16, num_layers=60, attention_head_dim=32,
                num_attention_heads=2, joint_attention_dim=3584, pooled_projection_dim=768,
                axes_dims_rope=(4, 14, 14))
    unet = only_accepted(unet, comfy.ldm.qwen_image.model.QwenImageTransformer2DModel)
    unet.update(overrides)
    return build_tiny(comfy.supported_models.QwenImage, unet, seed, weight_std)


def conditioning_qwen_image(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8):
    g = torch.Generator().manual_seed(seed)
    return [[seeded_randn(g, batch, tokens, 3584, std=std), {"pooled_output": None}]]


def latent_qwen_image(seed: int = 0, batch: int = 1) -> torch.Tensor:
    """Qwen-Image's latent format is Wan 2.1's (3 latent dimensions): B, 16, 1, H, W."""
    return seeded_latent(seed, batch, 16, 1, 8, 8)


# -------------------------------------------------------------------------------------- AuraFlow

def tiny_aura_flow(seed: int = 0, weight_std: float = 0.1, **overrides) -> comfy.model_patcher.ModelPatcher:
    """AuraFlow (comfy.ldm.aura.mmdit.MMDiT): 4 double + 32 single layers (n_layers=36), 2048-d
    Pile-T5 context, 4-channel SDXL latent, patch 2; width 64, 2 heads, 32×32 learned positions.
    Weights at std 0.1: its affine-free LayerNorms and small gates leave the prompt's effect at ~1e-6 of
    the output at 0.02."""
    import comfy.ldm.aura.mmdit
    unet = dict(in_channels=4, out_channels=4, patch_size=2, dim=64, n_layers=36, n_double_layers=4, n_heads=2,
                global_conddim=64, cond_seq_dim=2048, max_seq=32 * 32)
    unet = only_accepted(unet, comfy.ldm.aura.mmdit.MMDiT)
    unet.update(overrides)
    return build_tiny(comfy.supported_models.AuraFlow, unet, seed, weight_std)


def conditioning_aura_flow(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8):
    g = torch.Generator().manual_seed(seed)
    return [[seeded_randn(g, batch, tokens, 2048, std=std), {"pooled_output": None}]]


def latent_aura_flow(seed: int = 0, batch: int = 1) -> torch.Tensor:
    return seeded_latent(seed, batch, 4, 8, 8)


# ---------------------------------------------------------------------------------------- Chroma

def tiny_chroma(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """Chroma (comfy.ldm.chroma.model.Chroma): Flux's 19 double + 38 single blocks without per-block
    modulation, the 5-layer distilled-guidance approximator (its 344 modulation vectors are hard-coded
    to that block count), 4096-d T5 context; width 64, 2 heads (RoPE axes 4+14+14)."""
    import comfy.ldm.chroma.model
    unet = dict(in_channels=64, out_channels=64, context_in_dim=4096, hidden_size=64, mlp_ratio=4.0, num_heads=2,
                depth=19, depth_single_blocks=38, axes_dim=[4, 14, 14], theta=10000, patch_size=2, qkv_bias=True,
                in_dim=64, out_dim=64, hidden_dim=64, n_layers=5, txt_ids_dims=[], vec_in_dim=None)
    unet = only_accepted(unet, comfy.ldm.chroma.model.ChromaParams)
    unet.update(overrides)
    return build_tiny(comfy.supported_models.Chroma, unet, seed, weight_std)


def conditioning_chroma(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8, guidance: float = 0.0):
    g = torch.Generator().manual_seed(seed)
    # A T5-only encoder: CLIPTextEncode still sets pooled_output (None), and 0.3.75's Flux.encode_adm
    # reads the key.
    return [[seeded_randn(g, batch, tokens, 4096, std=std), {"pooled_output": None, "guidance": guidance}]]


def latent_chroma(seed: int = 0, batch: int = 1) -> torch.Tensor:
    return seeded_latent(seed, batch, 16, 8, 8)


# ----------------------------------------------------------------------------------------- Mochi

def tiny_mochi(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """Mochi preview (comfy.ldm.genmo.joint_model.asymm_models_joint.AsymmDiTJoint): asymmetric joint
    blocks (visual width 64, text width 32, 2 heads), 12-channel latent, patch 2.

    24 blocks, not the real 48 (``depth=48`` gives them): AsymmetricJointBlock asserts the visual MLP's
    real hidden width (1536·8 = 12288), so each block keeps ~1.5M parameters at any width and 48 of them
    cost ~2 s to build and ~0.6 s a forward on CPU. The T5 feature width is 256, not 4096: the caption
    attention pool alone would be 50M parameters at 4096."""
    unet = dict(depth=24, patch_size=2, num_heads=2, hidden_size_x=64, hidden_size_y=32, mlp_ratio_x=12288 / 64,
                mlp_ratio_y=4.0, learn_sigma=False, in_channels=12, qk_norm=True, qkv_bias=False, out_bias=True,
                attn_drop=0.0, patch_embed_bias=True, posenc_preserve_area=True, timestep_mlp_bias=True,
                attend_to_padding=False, timestep_scale=1000.0, use_t5=True, t5_feat_dim=MOCHI_T5_DIM,
                t5_token_length=256, rope_theta=10000.0)
    unet.update(overrides)
    return build_tiny(comfy.supported_models.GenmoMochi, unet, seed, weight_std)


MOCHI_T5_DIM = 256


def conditioning_mochi(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8):
    g = torch.Generator().manual_seed(seed)
    # mochi_te returns the T5 attention mask with the tokens; extra_conds turns it into num_tokens.
    return [[seeded_randn(g, batch, tokens, MOCHI_T5_DIM, std=std),
             {"pooled_output": None, "attention_mask": torch.ones(batch, tokens, dtype=torch.long)}]]


def latent_mochi(seed: int = 0, batch: int = 1) -> torch.Tensor:
    return seeded_latent(seed, batch, 12, 2, 4, 4)


# ------------------------------------------------------------------------------------ HunyuanDiT

def tiny_hunyuan_dit(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """HunyuanDiT v1.2 (comfy.ldm.hydit.models.HunYuanDiT, config "hydit"): 40 blocks with the long skips
    of the second half, learned sigma, v-prediction; width 64, 2 heads. The text widths are toy too
    (BERT 1024 → 64, mT5 2048 → 64, 8 + 8 tokens): mlp_t5 and the attention pool would be ~50M
    parameters at the real widths."""
    unet = dict(input_size=32, patch_size=2, in_channels=4, hidden_size=64, depth=40, num_heads=2, mlp_ratio=4.0,
                text_states_dim=HYDIT_TEXT_DIM, text_states_dim_t5=HYDIT_T5_DIM, text_len=HYDIT_TOKENS,
                text_len_t5=HYDIT_TOKENS, qk_norm=True, size_cond=False, use_style_cond=False, learn_sigma=True)
    unet.update(overrides)
    return build_tiny(comfy.supported_models.HunyuanDiT, unet, seed, weight_std)


HYDIT_TEXT_DIM, HYDIT_T5_DIM, HYDIT_TOKENS = 64, 64, 8


def conditioning_hunyuan_dit(batch: int = 1, seed: int = 1, std: float = 1.0):
    """As HyditModel returns: BERT tokens and pooled output, their mask, mT5 tokens and their mask."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch, HYDIT_TOKENS, dtype=torch.long)
    return [[seeded_randn(g, batch, HYDIT_TOKENS, HYDIT_TEXT_DIM, std=std),
             {"pooled_output": seeded_randn(g, batch, HYDIT_TEXT_DIM, std=std), "attention_mask": mask,
              "conditioning_mt5xl": seeded_randn(g, batch, HYDIT_TOKENS, HYDIT_T5_DIM, std=std),
              "attention_mask_mt5xl": mask.clone()}]]


def latent_hunyuan_dit(seed: int = 0, batch: int = 1) -> torch.Tensor:
    return seeded_latent(seed, batch, 4, 8, 8)


FAMILIES = {
    "flux": (tiny_flux, conditioning_flux, latent_flux),
    "wan": (tiny_wan, conditioning_wan, latent_wan),
    "sd35_large": (tiny_sd35_large, conditioning_sd35_large, latent_sd35_large),
    "hunyuan_video": (tiny_hunyuan_video, conditioning_hunyuan_video, latent_hunyuan_video),
    "ltxv": (tiny_ltxv, conditioning_ltxv, latent_ltxv),
    "qwen_image": (tiny_qwen_image, conditioning_qwen_image, latent_qwen_image),
    "aura_flow": (tiny_aura_flow, conditioning_aura_flow, latent_aura_flow),
    "chroma": (tiny_chroma, conditioning_chroma, latent_chroma),
    "mochi": (tiny_mochi, conditioning_mochi, latent_mochi),
    "hunyuan_dit": (tiny_hunyuan_dit, conditioning_hunyuan_dit, latent_hunyuan_dit),
    "stable_audio": (media.tiny_stable_audio, media.conditioning_stable_audio, media.latent_stable_audio),
    "stable_audio3": (media.tiny_stable_audio3, media.conditioning_stable_audio3, media.latent_stable_audio3),  # 0.33
    "hunyuan3d": (media.tiny_hunyuan3d, media.conditioning_hunyuan3d, media.latent_hunyuan3d),
    "kandinsky5": (recent.tiny_kandinsky5, recent.conditioning_kandinsky5, recent.latent_kandinsky5),  # 0.33
    "joyimage": (recent.tiny_joyimage, recent.conditioning_joyimage, recent.latent_joyimage),  # 0.33
    "lens": (recent.tiny_lens, recent.conditioning_lens, recent.latent_lens),  # 0.33
    "mage_flow": (recent.tiny_mage_flow, recent.conditioning_mage_flow, recent.latent_mage_flow),  # 0.33
    "hidream_o1": (recent.tiny_hidream_o1, recent.conditioning_hidream_o1, recent.latent_hidream_o1),  # 0.33
    "minimax_h3": (media.tiny_minimax_h3, media.conditioning_minimax_h3, media.latent_minimax_h3),  # 0.33
    "ltxav": (media.tiny_ltxav, media.conditioning_ltxav, media.latent_ltxav),  # 0.33
}

#: Each tiny family's name in internals/dit.py's FAMILIES (what detection must say it is).
DOOR_FAMILY = {
    "flux": "Flux", "wan": "Wan", "sd35_large": "SD3", "hunyuan_video": "HunyuanVideo", "ltxv": "LTX-Video",
    "qwen_image": "Qwen-Image", "aura_flow": "AuraFlow", "chroma": "Chroma", "mochi": "Mochi",
    "hunyuan_dit": "HunyuanDiT", "stable_audio": "Stable Audio", "stable_audio3": "Stable Audio",
    "hunyuan3d": "Hunyuan3D",
    "kandinsky5": "Kandinsky 5", "joyimage": "JoyImage", "lens": "Lens", "mage_flow": "MageFlow",
    "hidream_o1": "HiDream-O1", "minimax_h3": "MiniMax H3", "ltxav": "LTX-2",
}
#: Tiny models newer than their door family: (the ComfyUI release that added them, their config class).
NEWER_THAN_FAMILY = {"stable_audio3": ("0.33.0", "StableAudio3")}
#: Families that sample only at batch 1 (MiniMax H3's forward refuses more).
BATCH_ONE = {"minimax_h3"}
