"""Tiny random-weight instances of the DiT classes ComfyUI added after 0.3.75 (host tests only; present in
0.33.0): Kandinsky 5, JoyImage, Lens, Mage-Flow and HiDream-O1, with the same three functions per family as
tools/tiny_dits.py, which registers them in its FAMILIES; and Causal-Forcing Wan with the ar_video sampler,
a Wan model whose blocks that sampler runs without patches. On an older ComfyUI the builders fail on import.

HiDream-O1 is pixel space (no VAE; a (B, 3, H, W) latent patchified 32×32) and its "text encoder" only
tokenizes: the conditioning carries token ids, which the Qwen3-VL decoder inside the diffusion model embeds
with the image tokens in one sequence every step. It caches the prompt's causal-prefix K/V on the diffusion
model between steps (and sampling runs) unless a "dit" replace patch is installed.
"""
from __future__ import annotations

import torch

import comfy.model_patcher
import comfy.supported_models

from tools.tiny_models import build_tiny, only_accepted, seeded_latent, seeded_randn

# ------------------------------------------------------------------------------------ Kandinsky 5

KANDINSKY5_TEXT_DIM, KANDINSKY5_POOLED_DIM = 3584, 768  # Qwen2.5-VL 7B hidden states, CLIP-L pooled


def tiny_kandinsky5(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """Kandinsky 5.0 Video Lite (comfy.ldm.kandinsky5.model.Kandinsky5, config
    comfy.supported_models.Kandinsky5): 2 text-encoder blocks (``text_transformer_blocks``, run once
    before the visual loop, not patchable) and 32 visual decoder blocks (``visual_transformer_blocks``:
    self-attention, cross-attention to the text, FFN; patched as "double_block" i); 3584-d Qwen2.5-VL
    context, 768-d pooled CLIP-L added to the time embedding; HunyuanVideo latent (16 channels) plus the
    model's 17-channel concat (zero image + mask) patchified 1×2×2 (visual_embed_dim 33·4 = 132).
    Width 64, 2 heads of 32 (RoPE axes 8+12+12), FFN 256, time width 64 (real: 1792, 16 heads of 112,
    7168, 512).

    The lighter of the two Kandinsky 5 configs: Image Lite (Kandinsky5Image) has 50 visual blocks at
    width 2560, the Flux latent and no concat channels; Video Pro 60 blocks at 4096."""
    import comfy.ldm.kandinsky5.model
    unet = dict(in_visual_dim=16, out_visual_dim=16, in_text_dim=KANDINSKY5_TEXT_DIM,
                in_text_dim2=KANDINSKY5_POOLED_DIM, time_dim=64, model_dim=64, ff_dim=256, visual_embed_dim=132,
                patch_size=(1, 2, 2), num_text_blocks=2, num_visual_blocks=32, axes_dims=(8, 12, 12),
                rope_scale_factor=(1.0, 2.0, 2.0))
    unet = only_accepted(unet, comfy.ldm.kandinsky5.model.Kandinsky5)
    unet.update(overrides)
    return build_tiny(comfy.supported_models.Kandinsky5, unet, seed, weight_std)


def conditioning_kandinsky5(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8):
    """As Kandinsky5TEModel returns: Qwen2.5-VL tokens (template stripped) and CLIP-L's pooled output. Its
    attention mask is dropped when nothing is masked (QwenImageTEModel), so none here; the model ignores
    it anyway."""
    g = torch.Generator().manual_seed(seed)
    return [[seeded_randn(g, batch, tokens, KANDINSKY5_TEXT_DIM, std=std),
             {"pooled_output": seeded_randn(g, batch, KANDINSKY5_POOLED_DIM, std=std)}]]


def latent_kandinsky5(seed: int = 0, batch: int = 1) -> torch.Tensor:
    return seeded_latent(seed, batch, 16, 2, 8, 8)


# --------------------------------------------------------------------------------------- JoyImage

JOYIMAGE_TEXT_DIM = 4096  # Qwen3-VL 8B hidden states


def tiny_joyimage(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """JoyImage / JoyAI-Image-Edit (comfy.ldm.joyimage.model.JoyImageTransformer3DModel, config
    comfy.supported_models.JoyImage): 40 dual-stream blocks (``double_blocks``: image and text streams,
    joint attention, per-block modulation tables over a shared 6·width time projection), Wan-style
    time/text embedder over 4096-d Qwen3-VL context, Wan 2.1 latent (16 channels) patchified 1×2×2 by a
    Conv3d; no final modulation. Width 128, 1 head: the config's unet_extra_config pins rope_dim_list to
    16+56+56, so a head is 128 wide at any width (real: 4096, 32 heads of 128)."""
    import comfy.ldm.joyimage.model
    unet = dict(patch_size=[1, 2, 2], in_channels=16, out_channels=16, hidden_size=128, num_attention_heads=1,
                text_dim=JOYIMAGE_TEXT_DIM, mlp_width_ratio=4.0, num_layers=40)
    unet = only_accepted(unet, comfy.ldm.joyimage.model.JoyImageTransformer3DModel)
    unet.update(overrides)
    return build_tiny(comfy.supported_models.JoyImage, unet, seed, weight_std)


def conditioning_joyimage(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8):
    """As JoyImageTEModel returns: Qwen3-VL tokens (system prefix dropped), no pooled output, and the
    attention mask (kept even when all ones; JoyImage's extra_conds ignores it)."""
    g = torch.Generator().manual_seed(seed)
    return [[seeded_randn(g, batch, tokens, JOYIMAGE_TEXT_DIM, std=std),
             {"pooled_output": None, "attention_mask": torch.ones(batch, tokens, dtype=torch.long)}]]


def latent_joyimage(seed: int = 0, batch: int = 1) -> torch.Tensor:
    """JoyImage's latent format is Wan 2.1's, 5-d: B, 16, 1, H, W."""
    return seeded_latent(seed, batch, 16, 1, 8, 8)


# ------------------------------------------------------------------------------------------ Lens

#: GPT-OSS-20B's hidden width and the four decoder layers Lens's text encoder stacks (LENS_SELECTED_LAYERS).
LENS_TEXT_DIM, LENS_TEXT_LAYERS = 2880, 4


def tiny_lens(seed: int = 0, weight_std: float = 0.05, **overrides) -> comfy.model_patcher.ModelPatcher:
    """Microsoft Lens (comfy.ldm.lens.model.LensTransformer2DModel, config comfy.supported_models.Lens,
    model_base.Lens, FLUX model type): 48 dual-stream LensTransformerBlocks in ``transformer_blocks``
    (joint image+text attention, SwiGLU MLPs), the multi-layer text input (4 GPT-OSS-20B layers of 2880,
    each RMS-normed, concatenated into one 11520-d context), 128-channel Flux2 latent read as tokens with
    no further packing (proj_out gives 2·2·32 = 128 channels back); width 64, 2 heads of 32 (RoPE axes
    4+14+14).
    Weights at std 0.05: every RMSNorm's weight is random too, and through the text norm, txt_in and
    each block's q/k norms the prompt moves a cfg-2 step by only ~5e-5 at 0.02 (~2e-3 at 0.05)."""
    import comfy.ldm.lens.model
    unet = dict(patch_size=2, in_channels=128, out_channels=32, num_layers=48, attention_head_dim=32,
                num_attention_heads=2, enc_hidden_dim=LENS_TEXT_DIM, axes_dims_rope=(4, 14, 14), rms_norm=True,
                multi_layer_encoder_feature=True, selected_layer_index=tuple(range(LENS_TEXT_LAYERS)))
    unet = only_accepted(unet, comfy.ldm.lens.model.LensTransformer2DModel)
    unet.update(overrides)
    return build_tiny(comfy.supported_models.Lens, unet, seed, weight_std)


def conditioning_lens(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8):
    """As LensGptOssClipModel returns: [B, S, 4·2880] stacked layer features, the token mask (long) and
    num_layers_stacked; Lens has no pooled output. model_base.Lens.extra_conds passes the mask on."""
    g = torch.Generator().manual_seed(seed)
    return [[seeded_randn(g, batch, tokens, LENS_TEXT_LAYERS * LENS_TEXT_DIM, std=std),
             {"pooled_output": None, "attention_mask": torch.ones(batch, tokens, dtype=torch.long),
              "num_layers_stacked": LENS_TEXT_LAYERS}]]


def latent_lens(seed: int = 0, batch: int = 1) -> torch.Tensor:
    return seeded_latent(seed, batch, 128, 4, 4)


# ------------------------------------------------------------------------------------- Mage-Flow

MAGE_TEXT_DIM = 2560  # Qwen3-VL-4B's last hidden state


def tiny_mage_flow(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """Mage-Flow (comfy.ldm.mage_flow.model.MageFlowTransformer2DModel, config
    comfy.supported_models.MageFlow, model_base.MageFlow ⊂ QwenImage, FLOW model type, shift 6): 12
    Qwen-Image dual-stream blocks in ``transformer_blocks``, 2560-d RMS-normed Qwen3-VL-4B context
    (text tokens unrotated), 128-channel Flux2 latent with patch size 1, timestep rounded to bf16 by
    process_timestep; width 64, 2 heads of 32 (RoPE axes 4+14+14)."""
    import comfy.ldm.mage_flow.model
    unet = dict(in_channels=128, out_channels=128, num_layers=12, attention_head_dim=32, num_attention_heads=2,
                joint_attention_dim=MAGE_TEXT_DIM, axes_dims_rope=(4, 14, 14))
    unet = only_accepted(unet, comfy.ldm.mage_flow.model.MageFlowTransformer2DModel)
    unet.update(overrides)
    return build_tiny(comfy.supported_models.MageFlow, unet, seed, weight_std)


def conditioning_mage_flow(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8):
    """As MageFlowTEModel returns for unpadded prompts: the 2560-d tokens alone (it drops an all-ones
    attention mask; CLIPTextEncode sets pooled_output None)."""
    g = torch.Generator().manual_seed(seed)
    return [[seeded_randn(g, batch, tokens, MAGE_TEXT_DIM, std=std), {"pooled_output": None}]]


def latent_mage_flow(seed: int = 0, batch: int = 1) -> torch.Tensor:
    return seeded_latent(seed, batch, 128, 4, 4)


# ------------------------------------------------------------------------------------------ HiDream-O1

#: toy Qwen3-VL-8B decoder: real layer count (36) and vocabulary (the chat-template ids reach 151673),
#: width 64, 2 query heads of 32 and 1 K/V head (GQA as the real 32/8), interleaved MRoPE over 16 pairs.
HIDREAM_O1_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=36, num_attention_heads=2,
                       num_key_value_heads=1, head_dim=32, rope_dims=[6, 5, 5])
#: toy Qwen3-VL vision tower (only reference images reach it): one block of width 32, a 2×2 position grid.
HIDREAM_O1_VISION = dict(hidden_size=32, num_heads=2, intermediate_size=32, depth=1, num_position_embeddings=4,
                         deepstack_visual_indexes=())
#: prompt words drawn from ordinary Qwen2 text ids (below the special tokens at 151643 and up).
HIDREAM_O1_TEXT_VOCAB = 151643


def tiny_hidream_o1(seed: int = 0, weight_std: float = 0.1, **overrides) -> comfy.model_patcher.ModelPatcher:
    """HiDream-O1-Image (comfy.ldm.hidream_o1.model.HiDreamO1Transformer, config
    comfy.supported_models.HiDreamO1, model_base.HiDreamO1, FLOW): the Qwen3-VL-8B decoder's 36 layers in
    ``language_model.layers`` (comfy.text_encoders.llama.TransformerBlock) over one sequence
    [chat-templated prompt ids | <|tms|> timestep token | target 32×32 RGB patches]; the prompt prefix
    attends causally, the rest attends to everything. Bottleneck patch embed 3072 → 16 → 64, final layer
    64 → 3072, Qwen3-VL vision tower for reference images. Width 64 (2 heads of 32, 1 K/V head);
    ``overrides`` update the text config, e.g. ``tiny_hidream_o1(num_hidden_layers=4)``. Weights at std 0.1:
    at 0.02 a different prompt moves a step's output by ~4e-5 (5e-3 at 0.1)."""
    text = {**HIDREAM_O1_TEXT, **overrides}
    unet = dict(text_config_overrides=text, vision_config_overrides=dict(HIDREAM_O1_VISION))
    return build_tiny(comfy.supported_models.HiDreamO1, unet, seed, weight_std)


def conditioning_hidream_o1(batch: int = 1, seed: int = 1, std: float = 1.0, words: int = 8):
    """As CLIPTextEncode gives with HiDream-O1's tokenizer-only text encoder (HiDreamO1TE): the chat template
    ``<|im_start|>user\\n{prompt}<|im_end|>\\n<|im_start|>assistant\\n<|boi|><|tms|>`` as token ids in
    ``text_input_ids`` (long, (B, T)), and as cross_attn the ids themselves as floats (B, T, 1), a surrogate the
    model never reads. `words` random prompt ids (seeded); `std` is unused (ids are not scaled). With batch > 1
    each row is its own prompt; model_base.HiDreamO1.extra_conds builds position_ids, ar_len = T - 1,
    token_types and vinput_mask from the ids and the noise's size."""
    from comfy.text_encoders import hidream_o1 as te
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, HIDREAM_O1_TEXT_VOCAB, (batch, words), generator=g)
    prefix = torch.tensor([te.IM_START_ID, te.USER_ID, te.NEWLINE_ID]).expand(batch, -1)
    suffix = torch.tensor([te.IM_END_ID, te.NEWLINE_ID, te.IM_START_ID, te.ASSISTANT_ID, te.NEWLINE_ID,
                           te.BOI_TOKEN_ID, te.TMS_TOKEN_ID]).expand(batch, -1)
    ids = torch.cat([prefix, prompt, suffix], dim=1)
    return [[ids.unsqueeze(-1).to(torch.float32), {"pooled_output": None, "text_input_ids": ids}]]


def latent_hidream_o1(seed: int = 0, batch: int = 1) -> torch.Tensor:
    """Pixel space, as EmptyHiDreamO1LatentImage (B, 3, height, width), at 64×64: 2×2 patches of 32."""
    return seeded_latent(seed, batch, 3, 64, 64)

# ------------------------------------------------------------------- Causal Wan (a Wan model, not a family)

def tiny_causal_wan(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """Causal-Forcing Wan 2.1 t2v (comfy.ldm.wan.ar_model.CausalWanModel, a WanModel; config
    comfy.supported_models.WAN21_CausalAR_T2V): tools.tiny_dits.tiny_wan's topology (30 blocks, width 64,
    2 heads). Under the ar_video sampler it runs its own KV-cached block loop, which reads no "dit" patches."""
    unet = dict(model_type="t2v", patch_size=(1, 2, 2), text_len=512, in_dim=16, dim=64, ffn_dim=128,
                freq_dim=256, text_dim=4096, out_dim=16, num_heads=2, num_layers=30, window_size=(-1, -1),
                qk_norm=True, cross_attn_norm=True, eps=1e-6)
    unet.update(overrides)
    return build_tiny(comfy.supported_models.WAN21_CausalAR_T2V, unet, seed, weight_std)


def ar_video_sampler(num_frame_per_block: int = 1):
    """What ComfyUI's SamplerARVideo node returns."""
    import comfy.samplers
    return comfy.samplers.ksampler("ar_video", {"num_frame_per_block": num_frame_per_block})
