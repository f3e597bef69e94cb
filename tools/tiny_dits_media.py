"""Tiny random-weight instances of ComfyUI's real audio, 3D and audio-video DiT classes (host tests only):
Stable Audio Open 1.0 and Hunyuan3D v2 (ComfyUI 0.3.75 and 0.33.0; their latents are 1-D token sequences
(B, 64, N)), and Stable Audio 3 and the audio-video MiniMax H3 and LTX-2 (0.33 only). The same three functions per family as
tools/tiny_dits.py, which registers them in its FAMILIES.

MiniMax H3 samples a NestedTensor (video, audio) that the sampler packs flat; its diffusion model packs
text, audio and video rows into one (S, hidden) sequence with no batch axis and refuses a batch of 2, so
ComfyUI runs its cond and uncond one at a time. LTX-2 samples a NestedTensor too, and its blocks pass video
and audio as one (video, audio) pair.
"""
from __future__ import annotations

import torch

import comfy.model_patcher
import comfy.supported_models

from tools.tiny_models import build_tiny, only_accepted, randomize, seeded_latent, seeded_randn

# ------------------------------------------------------------------------------------- Stable Audio

#: T5-base's width (SAT5Model), and the NumberConditioner width model_base.StableAudio1 hard-codes.
SA_TEXT_DIM, SA_SECONDS_DIM = 768, 768


def _seconds_embedder_weights(prefix: str, seed: int, weight_std: float) -> dict:
    """A random state dict for one of StableAudio1's seconds_start / seconds_total NumberConditioners, under
    the checkpoint's ``conditioner.conditioners.<name>.`` prefix: StableAudio.get_model builds both from
    those keys (load_state_dict, strict), so an empty state dict cannot build the model. The learned Fourier
    frequencies are N(0, 1) (stable-audio-tools' init), the projection N(0, weight_std²)."""
    import comfy.ldm.audio.embedders
    conditioner = comfy.ldm.audio.embedders.NumberConditioner(SA_SECONDS_DIM, min_val=0, max_val=512)
    randomize(conditioner, seed, weight_std)
    with torch.no_grad():
        freqs = conditioner.embedder.embedding[0].weights
        freqs.copy_(torch.randn(freqs.shape, generator=torch.Generator().manual_seed(seed + 1)))
    return {prefix + k: v for k, v in conditioner.state_dict().items()}


def tiny_stable_audio(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """Stable Audio Open 1.0 (comfy.ldm.audio.dit.AudioDiffusionTransformer, config
    comfy.supported_models.StableAudio, model_base.StableAudio1, continuous v-prediction): 24
    ContinuousTransformer blocks in ``transformer.layers`` (self-attention with RoPE, cross-attention to the
    768-d T5 tokens + the two seconds embeddings, SwiGLU FF), the global embedding (seconds_start ⊕
    seconds_total, 1536-d, plus the timestep) prepended as one token ("prepend" global conditioning, so the
    blocks get no adaLN vector), 64-channel latent, patch 1; width 64, 2 heads of 32.

    The cond tokens are projected to the blocks' width (project_cond_tokens=True, the other branch of
    ComfyUI's detection): Open 1.0 keeps them 768-d, as 12 key/value heads of 64 for 24 query heads, and at
    width 64 no head size makes 768-d keys a whole divisor of the query heads (the cross-attention would
    repeat each key head 2 // 24 = 0 times). The tokens themselves stay 768-d: StableAudio1.extra_conds
    concatenates them with its 768-d seconds embeddings.

    Built as the loader builds it, with a state dict holding the two seconds embedders' weights (see
    _seconds_embedder_weights). The RoPE inv_freq buffer (a checkpoint key) gets its real values and the
    timestep Fourier features N(0, 1), as in stable-audio-tools; everything else N(0, weight_std²)."""
    unet = dict(audio_model="dit1.0", io_channels=64, patch_size=1, embed_dim=64, cond_token_dim=SA_TEXT_DIM,
                project_cond_tokens=True, global_cond_dim=2 * SA_SECONDS_DIM, project_global_cond=True,
                depth=24, num_heads=2, transformer_type="continuous_transformer", global_cond_type="prepend")
    unet.update(overrides)
    state_dict = {**_seconds_embedder_weights("conditioner.conditioners.seconds_start.", seed + 101, weight_std),
                  **_seconds_embedder_weights("conditioner.conditioners.seconds_total.", seed + 202, weight_std)}
    model = build_tiny(comfy.supported_models.StableAudio, unet, seed, weight_std, state_dict)
    diffusion_model = _real_rope(model)
    with torch.no_grad():
        w = diffusion_model.timestep_features.weight
        w.copy_(torch.randn(w.shape, generator=torch.Generator().manual_seed(seed + 303)))
    return model


def _real_rope(model):
    """Give the RoPE inv_freq buffer (a checkpoint key, random after build_tiny) its real values."""
    diffusion_model = model.model.diffusion_model
    with torch.no_grad():
        inv_freq = diffusion_model.transformer.rotary_pos_emb.inv_freq
        dim = 2 * inv_freq.shape[0]
        inv_freq.copy_(1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)))
    return diffusion_model


def conditioning_stable_audio(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8,
                              seconds_start: float = 0.0, seconds_total: float = 47.0):
    """As CLIPTextEncode (SAT5Model: T5-base, 768-d, no pooled output) then ConditioningStableAudio (its
    defaults, 0 s / 47 s) give it; StableAudio1.extra_conds appends the two seconds embeddings to the tokens
    and builds the global embedding from them."""
    g = torch.Generator().manual_seed(seed)
    return [[seeded_randn(g, batch, tokens, SA_TEXT_DIM, std=std),
             {"pooled_output": None, "seconds_start": seconds_start, "seconds_total": seconds_total}]]


def latent_stable_audio(seed: int = 0, batch: int = 1) -> torch.Tensor:
    """B, 64, T (EmptyLatentAudio's layout; 16 frames, not 47 s's ~1000)."""
    return seeded_latent(seed, batch, 64, 16)

# --------------------------------------------------------------------------- Stable Audio 3 (0.33)

#: T5Gemma b-b-ul2's encoder width (comfy.text_encoders.sa3.T5GemmaEncoderConfig.hidden_size), and the
#: NumberConditioner width model_base.StableAudio3 hard-codes for seconds_total.
SA3_TEXT_DIM, SA3_SECONDS_DIM = 768, 768
#: latent_formats.StableAudio3.latent_channels; the local conditioning is [mask (1) | masked latent (256)].
SA3_LATENT_CHANNELS = 256
SA3_LOCAL_ADD_COND_DIM = SA3_LATENT_CHANNELS + 1
#: SA3 medium's DiT: 24 blocks, 64 memory tokens (its model_config.json / checkpoint shapes).
SA3_DEPTH, SA3_MEMORY_TOKENS = 24, 64


def _seconds_total_weights(seed: int, weight_std: float) -> dict:
    """A random state dict for model_base.StableAudio3's seconds_total NumberConditioner (768-d, 0–384 s,
    exponential Fourier features: only the 256 → 768 projection has weights), under the checkpoint's
    ``conditioner.conditioners.seconds_total.`` prefix: StableAudio3.get_model loads it strictly."""
    import comfy.ldm.audio.embedders
    conditioner = comfy.ldm.audio.embedders.NumberConditioner(SA3_SECONDS_DIM, min_val=0, max_val=384,
                                                              fourier_features_type="expo")
    randomize(conditioner, seed, weight_std)
    return {"conditioner.conditioners.seconds_total." + k: v for k, v in conditioner.state_dict().items()}


def _padding_embedding(seed: int, std: float = 1.0) -> torch.Tensor:
    """The learned 768-d prompt padding vector (``conditioner.conditioners.prompt.padding_embedding``;
    T5Gemma's padding_mode "learned"): StableAudio3.extra_conds pads every prompt with it to 256 tokens."""
    return torch.randn(SA3_TEXT_DIM, generator=torch.Generator().manual_seed(seed)) * std


def tiny_stable_audio3(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """Stable Audio 3 medium (comfy.ldm.audio.dit.AudioDiffusionTransformer, config
    comfy.supported_models.StableAudio3, model_base.StableAudio3, FLOW, shift 2): 24 ContinuousTransformer
    blocks in ``transformer.layers``, each with adaLN from the shared ``transformer.global_cond_embedder``
    (seconds_total 768-d → projected, plus the timestep) plus its own learned ``to_scale_shift_gate`` bias,
    differential self-attention (RoPE, RMS qk-norm), differential cross-attention to the projected
    T5Gemma tokens (padded to 256 with the learned padding embedding, then the seconds_total token),
    ``to_local_embed`` (Linear 257 → dim, SiLU, Linear) adding the local conditioning after the
    cross-attention, SwiGLU FF; 64 memory tokens; 256-channel latent, patch 1; width 64, 2 heads of 32.

    The unet config is what comfy/model_detection.py gives an SA3 checkpoint (its keys and shapes), so
    tests can feed this model's own state dict back through detection. Built as the loader builds it, with
    a state dict holding the seconds_total embedder's weights and the padding embedding (see
    StableAudio3.get_model). The RoPE inv_freq buffer gets its real values; every norm's gain (the block
    RMSNorms and the per-head q/k RMSNorms) is 1 + N(0, weight_std²) rather than N(0, weight_std²): at a
    gain near 0 the q/k norms flatten every attention map, and differential attention (softmax(q·k) −
    softmax(q'·k')) · v then cancels to ~0, so neither the prompt nor any skipped layer would show.
    Everything else N(0, weight_std²). Any unet config key can be overridden (e.g. SA3 small's 20 blocks
    without differential attention: depth=20, attn_kwargs={"qk_norm": "rms", "differential": False})."""
    unet = dict(audio_model="dit1.0", io_channels=SA3_LATENT_CHANNELS, patch_size=1, embed_dim=64,
                cond_token_dim=SA3_TEXT_DIM, project_cond_tokens=True, global_cond_dim=SA3_SECONDS_DIM,
                project_global_cond=True, input_concat_dim=0, depth=SA3_DEPTH, num_heads=2,
                transformer_type="continuous_transformer", global_cond_type="adaLN",
                global_cond_shared_embed=True, local_add_cond_dim=SA3_LOCAL_ADD_COND_DIM,
                num_memory_tokens=SA3_MEMORY_TOKENS, attn_kwargs={"qk_norm": "rms", "differential": True},
                norm_type="rms_norm", timestep_features_type="expo")
    unet.update(overrides)
    state_dict = {**_seconds_total_weights(seed + 101, weight_std),
                  "conditioner.conditioners.prompt.padding_embedding": _padding_embedding(seed + 202)}
    model = build_tiny(comfy.supported_models.StableAudio3, unet, seed, weight_std, state_dict)
    import comfy.ldm.audio.dit as dit
    with torch.no_grad():
        for module in _real_rope(model).modules():
            if isinstance(module, (dit.RMSNorm, dit.LayerNorm)):
                module.gamma.add_(1.0)
    return model


def conditioning_stable_audio3(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8,
                               seconds_start: float = 0.0, seconds_total: float = 47.0):
    """As CLIPTextEncode (SAT5GemmaModel: the T5Gemma encoder, 768-d, no pooled output, no attention mask:
    the tokenizer does not pad) then ConditioningStableAudio (its defaults, 0 s / 47 s; it sets both, and
    StableAudio3.extra_conds reads only seconds_total) give it. extra_conds pads the tokens to 256 with the
    model's padding embedding and appends the seconds_total embedding (257 cross-attention tokens), and
    uses that embedding as the global conditioning too."""
    g = torch.Generator().manual_seed(seed)
    return [[seeded_randn(g, batch, tokens, SA3_TEXT_DIM, std=std),
             {"pooled_output": None, "seconds_start": seconds_start, "seconds_total": seconds_total}]]


def latent_stable_audio3(seed: int = 0, batch: int = 1) -> torch.Tensor:
    """B, 256, T: what the sampler makes of EmptyLatentAudio for SA3 (fix_empty_latent_channels repeats its
    64 channels to 256 and halves its 2048-sample frames to SA3's 4096); 16 frames, not 47 s's ~512."""
    return seeded_latent(seed, batch, SA3_LATENT_CHANNELS, 16)


# ---------------------------------------------------------------------------------- Hunyuan3D v2

#: DINOv2-giant's width (Hunyuan3D v2's CLIP-vision image encoder).
H3D_IMAGE_DIM = 1536


def tiny_hunyuan3d(seed: int = 0, weight_std: float = 0.02, **overrides) -> comfy.model_patcher.ModelPatcher:
    """Hunyuan3D v2.0 (comfy.ldm.hunyuan3d.model.Hunyuan3Dv2, config comfy.supported_models.Hunyuan3Dv2,
    model_base.Hunyuan3Dv2, FLOW): Flux's DoubleStreamBlock × 16 in ``double_blocks`` and SingleStreamBlock
    × 32 in ``single_blocks``, no positional embedding (pe None), no guidance embedding (v2.0; ``guidance_embed
    =True`` for the distilled variants), 1536-d DINOv2 image tokens as context, 64-channel shape latent read as
    tokens; width 64, 2 heads of 32."""
    import comfy.ldm.hunyuan3d.model
    unet = dict(image_model="hunyuan3d2", in_channels=64, context_in_dim=H3D_IMAGE_DIM, hidden_size=64,
                mlp_ratio=4.0, num_heads=2, depth=16, depth_single_blocks=32, qkv_bias=True, guidance_embed=False)
    unet = only_accepted(unet, comfy.ldm.hunyuan3d.model.Hunyuan3Dv2)
    unet.update(overrides)
    return build_tiny(comfy.supported_models.Hunyuan3Dv2, unet, seed, weight_std)


def conditioning_hunyuan3d(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8):
    """As Hunyuan3Dv2Conditioning gives it: the CLIP-vision output's last_hidden_state (1536-d; 8 tokens, not
    DINOv2's 1370) and no extras (extra_conds adds guidance 5.0, which v2.0 ignores). That node's negative is
    zeros_like(positive)."""
    g = torch.Generator().manual_seed(seed)
    return [[seeded_randn(g, batch, tokens, H3D_IMAGE_DIM, std=std), {}]]


def latent_hunyuan3d(seed: int = 0, batch: int = 1) -> torch.Tensor:
    """B, 64, N (EmptyLatentHunyuan3Dv2's layout; 16 tokens, not 3072)."""
    return seeded_latent(seed, batch, 64, 16)


# ----------------------------------------------------------------------------------------- MiniMax H3

MINIMAX_TEXT_DIM = 5120  # Qwen3-VL-32B's hidden width (layer 50's output)
#: rotary frequencies per axis (t, h, w): 3·2·4 = 24 of a head's 32 dims rotate, as 96 of 128 in the real one.
MINIMAX_ROPE_LEN = 4


def tiny_minimax_h3(seed: int = 0, weight_std: float = 0.1, **overrides) -> comfy.model_patcher.ModelPatcher:
    """MiniMax H3 (comfy.ldm.minimax.model.MiniMaxH3Model, config comfy.supported_models.MiniMaxH3,
    model_base.MiniMaxH3, FLOW_AV): 50 single-stream DiTBlocks in ``blocks`` over one packed (S, hidden)
    sequence [text | audio | video] with per-segment adaLN (3 modalities × distinct timesteps), a 2-block
    token refiner over the 5120-d Qwen3-VL-32B context (run once per sampling in extra_conds), 24-channel
    video latent patchified 1×2×2, 32-channel stereo audio latent; width 64, 2 heads of 32 (RoPE on 24 of
    32 dims), the real time-embedder form (no adaLN curve table). ``rope.inv_freq``, a checkpoint buffer,
    is set to 10000^(-i/4) rather than random. Weights at std 0.1: at 0.02 a different prompt moves a step's
    output by ~1e-6 (the random RMSNorm gains shrink the refined text), 8e-3 at 0.1."""
    unet = dict(hidden_size=64, num_layers=50, token_refiner_num_layers=2, num_attention_heads=2,
                attention_head_dim=32, ffn_hidden_size=128, latents_dim=24, audio_latents_dim=32,
                patch_size=(1, 2, 2), text_dim=MINIMAX_TEXT_DIM, timestep_input_dim=256,
                time_embed_hidden_size=64, time_embed_dim=32, rope_inv_freq_len=MINIMAX_ROPE_LEN)
    unet.update(overrides)
    model = build_tiny(comfy.supported_models.MiniMaxH3, unet, seed, weight_std)
    inv_freq = model.model.diffusion_model.rope.inv_freq
    with torch.no_grad():
        n = inv_freq.shape[0]
        inv_freq.copy_(1.0 / (10000.0 ** (torch.arange(n, dtype=torch.float32) / n)))
    return model


def conditioning_minimax_h3(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8):
    """As CLIPTextEncode / MiniMaxH3ImageToVideo give with the MiniMax H3 text encoder (MiniMaxH3ClipModel):
    [B, tokens, 5120] Qwen3-VL-32B layer-50 states, no pooled output, and ``minimax_token_tags`` (long, one
    per token: 1 for text, 0 inside vision blocks; all text here). MiniMax H3 samples one at a time: batch
    must stay 1 for sampling."""
    g = torch.Generator().manual_seed(seed)
    return [[seeded_randn(g, batch, tokens, MINIMAX_TEXT_DIM, std=std),
             {"pooled_output": None, "minimax_token_tags": torch.ones(tokens, dtype=torch.long)}]]


#: EmptyMiniMaxH3LatentAV's shapes for 5 frames (its minimum) at 64×64: video [B, 24, T, H/16, W/16] with
#: T = 2 latent frames, audio [B, 32, 2 (stereo), round(5 / 24 s · 40 Hz) = 8] (nodes_minimax_h3.temporal_shape).
MINIMAX_VIDEO_SHAPE, MINIMAX_AUDIO_SHAPE = (24, 2, 4, 4), (32, 2, 8)


def latent_minimax_h3(seed: int = 0, batch: int = 1):
    """A comfy.nested_tensor.NestedTensor (video (B, 24, 2, 4, 4), audio (B, 32, 2, 8)): what
    EmptyMiniMaxH3LatentAV gives for 5 frames at 64×64 (random here); the sampler packs it into one
    (B, 1, 768 + 512) latent and hands a NestedTensor back. Only batch 1 samples."""
    import comfy.nested_tensor
    g = torch.Generator().manual_seed(seed)
    return comfy.nested_tensor.NestedTensor((torch.randn(batch, *MINIMAX_VIDEO_SHAPE, generator=g),
                                             torch.randn(batch, *MINIMAX_AUDIO_SHAPE, generator=g)))


# ------------------------------------------------------------------------------------------ LTX-2

#: The LTX-2 19B checkpoint's transformer config (its safetensors "config" metadata, which
#: comfy/model_detection.py merges over the state-dict facts), less the widths the builder makes toy.
LTX2_CONFIG = dict(in_channels=128, audio_in_channels=128, num_layers=48, positional_embedding_theta=10000.0,
                   positional_embedding_max_pos=[20, 2048, 2048], audio_positional_embedding_max_pos=[20],
                   causal_temporal_positioning=True, use_middle_indices_grid=True, timestep_scale_multiplier=1000,
                   av_ca_timestep_scale_multiplier=1000.0, rope_type="split", frequencies_precision="float64",
                   connector_num_layers=2, cross_attention_adaln=False, caption_proj_before_connector=False,
                   apply_gated_attention=False, use_keyframes_abs_pos_embedding=False)

#: Toy widths: video 2 × 32, audio 2 × 16, text connectors 2 × 32 over a 64-wide caption.
TOY_WIDTHS = dict(num_attention_heads=2, attention_head_dim=32, cross_attention_dim=64,
                  audio_num_attention_heads=2, audio_attention_head_dim=16, audio_cross_attention_dim=32,
                  caption_channels=64, connector_num_attention_heads=2, connector_attention_head_dim=32)

CAPTION_CHANNELS = TOY_WIDTHS["caption_channels"]


def tiny_ltxav(seed: int = 0, weight_std: float = 0.05, **overrides) -> comfy.model_patcher.ModelPatcher:
    """LTX-2 (comfy.ldm.lightricks.av_model.LTXAVModel, config comfy.supported_models.LTXAV): the 19B
    checkpoint's transformer config (48 audio-video blocks, split RoPE in float64, middle-of-token grid, causal
    temporal positions, AV cross-attention timestep multiplier 1000) at toy widths: video 2 heads × 32, audio
    2 × 16, a 64-wide caption through the model's own two text connectors (at Gemma's real 3840 they would be
    ~700M parameters). Weights at std 0.05: the connectors pad the prompt with learnable registers to 1024
    tokens, so at 0.02 eight prompt tokens move a step by only ~5e-5 (video) / ~1e-5 (audio)."""
    unet = {**LTX2_CONFIG, **TOY_WIDTHS}
    unet.update(overrides)
    return build_tiny(comfy.supported_models.LTXAV, unet, seed, weight_std)


def conditioning_ltxav(batch: int = 1, seed: int = 1, std: float = 1.0, tokens: int = 8, frame_rate: float = 25.0):
    """As LTX-2's text encoder (LTXAVTEModel) returns: projected Gemma features, unprocessed (extra_conds runs
    the model's connectors on them), no attention mask (the encoder trims the padding); LTXVConditioning adds
    frame_rate."""
    g = torch.Generator().manual_seed(seed)
    return [[seeded_randn(g, batch, tokens, CAPTION_CHANNELS, std=std),
             {"pooled_output": None, "unprocessed_ltxav_embeds": True, "frame_rate": frame_rate}]]


def latent_ltxav(seed: int = 0, batch: int = 1, frames: int = 2, audio_length: int = 5):
    """A NestedTensor (video (B, 128, frames, 2, 2), audio (B, 8, audio_length, 16)), as LTXVConcatAVLatent
    builds it; the sampler packs it flat."""
    import comfy.nested_tensor
    return comfy.nested_tensor.NestedTensor((seeded_latent(seed, batch, 128, frames, 2, 2),
                                             seeded_latent(seed + 1000, batch, 8, audio_length, 16)))
