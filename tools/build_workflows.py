"""Source of the bundled workflows in workflows/ (the graph editor's UI format).

Regenerate after changing a node's inputs:  python3 -m tools workflows
(the test suite checks the committed files equal what this builds from the live /object_info, on
every host it runs on: the build takes nothing from object_info that differs between ComfyUI releases).
Model file names are the ones the public checkpoints are distributed under.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from tools.host import PACK_ROOT as ROOT
from tools import workflow_tools

NOOB = "NoobAI-XL-Vpred-v1.0.safetensors"  # Laxhar/noobai-XL-Vpred-1.0
SDXL_BASE = "sd_xl_base_1.0.safetensors"  # stabilityai/stable-diffusion-xl-base-1.0 (an ε model)
SD35 = "sd3.5_medium.safetensors"  # stabilityai/stable-diffusion-3.5-medium
SD35_LARGE = "sd3.5_large.safetensors"  # stabilityai/stable-diffusion-3.5-large
CLIP_L, CLIP_G, T5 = "clip_l.safetensors", "clip_g.safetensors", "t5xxl_fp16.safetensors"  # its text_encoders/
INPUT_FILES = ["example.png"]  # ComfyUI's own input/example.png; the training workflow's image
MODEL_FILES = {"checkpoints": [NOOB, SDXL_BASE, SD35, SD35_LARGE], "text_encoders": [CLIP_L, CLIP_G, T5]}

POSITIVE = "1girl, solo, night city, neon lights, dark background, masterpiece, best quality"
NEGATIVE = "worst quality, low quality, lowres, bad anatomy, watermark"


def note(node_id, pos, text, size=(420, 260)):
    return {"id": node_id, "type": "MarkdownNote", "pos": pos, "size": list(size), "title": "Read me", "text": text}


def sdxl_front(loader_id=1):
    """Loader, prompts and the v-pred/ZTSNR patch shared by the SDXL workflows."""
    return [
        {"id": loader_id, "type": "CheckpointLoaderSimple", "pos": [0, 120], "widgets": {"ckpt_name": NOOB}},
        {"id": 2, "type": "SNRTVPrediction", "pos": [380, 0], "links": {"model": (loader_id, 0)},
         "widgets": {"prediction": "auto", "zsnr": "auto", "terminal_sigma": "NovelAI (20000)",
                     "skip_cfg_on_terminal_step": False}},
        {"id": 3, "type": "SNRTRescaleCFG", "pos": [740, 0], "links": {"model": (2, 0)},
         "widgets": {"multiplier": 0.7, "start_percent": 0.0, "end_percent": 1.0}},
        {"id": 4, "type": "CLIPTextEncode", "pos": [380, 260], "size": [330, 160], "title": "Positive",
         "links": {"clip": (loader_id, 1)}, "widgets": {"text": POSITIVE}},
        {"id": 5, "type": "CLIPTextEncode", "pos": [380, 460], "size": [330, 160], "title": "Negative",
         "links": {"clip": (loader_id, 1)}, "widgets": {"text": NEGATIVE}},
    ]


def decode_and_save(first_id, samples, vae, prefix, x=1500):
    return [
        {"id": first_id, "type": "VAEDecode", "pos": [x, 0], "links": {"samples": samples, "vae": vae}},
        {"id": first_id + 1, "type": "SaveImage", "pos": [x + 360, 0], "size": [400, 460],
         "links": {"images": (first_id, 0)}, "widgets": {"filename_prefix": prefix}},
    ]


def sdxl_vpred_ztsnr_ksampler():
    return sdxl_front() + [
        {"id": 6, "type": "SNRTAspectBucket", "pos": [0, 420],
         "widgets": {"aspect_width": 2, "aspect_height": 3, "pixel_budget": 1024 * 1024,
                     "latent_type": "SD1 / SDXL (4 channels)", "batch_size": 1}},
        {"id": 7, "type": "KSampler", "pos": [1100, 0], "size": [320, 480],
         "links": {"model": (3, 0), "positive": (4, 0), "negative": (5, 0), "latent_image": (6, 0)},
         "widgets": {"seed": 42, "steps": 28, "cfg": 5.0, "sampler_name": "dpmpp_2m", "scheduler": "ztsnr_exponential",
                     "denoise": 1.0}},
        *decode_and_save(8, (7, 0), (1, 2), "snrt_sdxl_vpred_ztsnr"),
        note(20, [0, -320], "## SDXL v-pred ZTSNR (NoobAI-XL V-Pred)\n\nPut `" + NOOB + "` in `models/checkpoints`. "
             "The loader reads its `v_pred` and `ztsnr` keys; **V-Prediction / ZTSNR** on *auto* keeps them and sets "
             "the terminal σ (NovelAI: 20000). The **ztsnr_exponential** scheduler takes one step from that ∞ "
             "stand-in, then spends the rest from σ_hi = 400 down (ComfyUI's karras would spend 19 of 28 steps "
             "above 14.6). **Rescale CFG** (0.7) keeps cfg 5 from over-exposing. Other v-pred ZTSNR SDXL "
             "checkpoints work the same; for a plain eps model use a core scheduler instead."),
    ]


def sdxl_vpred_ztsnr_custom_sampler():
    return sdxl_front() + [
        {"id": 6, "type": "SNRTAspectBucket", "pos": [0, 420],
         "widgets": {"aspect_width": 2, "aspect_height": 3, "pixel_budget": 1024 * 1024,
                     "latent_type": "SD1 / SDXL (4 channels)", "batch_size": 1}},
        {"id": 7, "type": "SNRTScheduler", "pos": [740, 200], "links": {"model": (3, 0), "latent": (6, 0)},
         "widgets": {"steps": 28, "shape": "exponential", "terminal": "infinite (20000)", "sigma_hi_base": 400.0,
                     "denoise": 1.0}},
        {"id": 8, "type": "BasicScheduler", "pos": [740, 460], "links": {"model": (3, 0)},
         "widgets": {"scheduler": "karras", "steps": 28, "denoise": 1.0}},
        {"id": 9, "type": "SNRTPreviewSigmas", "pos": [1100, 520], "links": {"sigmas": (7, 0), "sigmas_b": (8, 0), "model": (3, 0)},
         "widgets": {"label": "ours: ZTSNR Scheduler", "label_b": "ComfyUI karras"}},
        {"id": 10, "type": "PreviewImage", "pos": [1500, 520], "size": [480, 260], "links": {"images": (9, 0)}},
        {"id": 11, "type": "RandomNoise", "pos": [1100, -200], "widgets": {"noise_seed": 42}},
        {"id": 12, "type": "CFGGuider", "pos": [1100, 0], "links": {"model": (3, 0), "positive": (4, 0), "negative": (5, 0)},
         "widgets": {"cfg": 5.0}},
        {"id": 13, "type": "KSamplerSelect", "pos": [1100, 160], "widgets": {"sampler_name": "dpmpp_2m"}},
        {"id": 14, "type": "SamplerCustomAdvanced", "pos": [1100, 280],
         "links": {"noise": (11, 0), "guider": (12, 0), "sampler": (13, 0), "sigmas": (7, 0), "latent_image": (6, 0)}},
        *decode_and_save(15, (14, 0), (1, 2), "snrt_sdxl_custom", x=1500),
        note(20, [0, -320], "## SDXL v-pred ZTSNR with SamplerCustomAdvanced\n\nThe same model as the KSampler "
             "workflow, with **ZTSNR Scheduler** making the sigmas: shape, terminal σ and σ_hi base are yours to "
             "change, and the latent input scales σ_hi by the canvas. **Preview Sigmas** draws them next to "
             "ComfyUI's karras on the same model: watch where each spends its steps. Model: `" + NOOB + "`."),
    ]


def sd35_slg(checkpoint, slg_widgets, prompt, sampling, prefix, note_text, note_y=-320):
    """SD 3.5 (Medium or Large) with Skip Layer Guidance: loaders, shift 3, SLG, prompts, 1024² latent, KSampler."""
    return [
        {"id": 1, "type": "CheckpointLoaderSimple", "pos": [0, 0], "widgets": {"ckpt_name": checkpoint}},
        {"id": 2, "type": "TripleCLIPLoader", "pos": [0, 200],
         "widgets": {"clip_name1": CLIP_L, "clip_name2": CLIP_G, "clip_name3": T5}},
        {"id": 3, "type": "ModelSamplingSD3", "pos": [380, 0], "links": {"model": (1, 0)}, "widgets": {"shift": 3.0}},
        {"id": 4, "type": "SNRTSkipLayerGuidance", "pos": [740, 0], "links": {"model": (3, 0)},
         "widgets": dict(slg_widgets, single_layers="", mode="original")},
        {"id": 5, "type": "CLIPTextEncode", "pos": [380, 260], "size": [330, 160], "title": "Positive",
         "links": {"clip": (2, 0)}, "widgets": {"text": prompt}},
        {"id": 6, "type": "CLIPTextEncode", "pos": [380, 460], "size": [330, 160], "title": "Negative",
         "links": {"clip": (2, 0)}, "widgets": {"text": ""}},
        {"id": 7, "type": "EmptySD3LatentImage", "pos": [0, 420], "widgets": {"width": 1024, "height": 1024,
                                                                              "batch_size": 1}},
        {"id": 8, "type": "KSampler", "pos": [1100, 0], "size": [320, 480],
         "links": {"model": (4, 0), "positive": (5, 0), "negative": (6, 0), "latent_image": (7, 0)},
         "widgets": dict(sampling, sampler_name="dpmpp_2m", scheduler="sgm_uniform", denoise=1.0)},
        *decode_and_save(9, (8, 0), (1, 2), prefix),
        note(20, [0, note_y], note_text),
    ]


def sd35_medium_slg():
    return sd35_slg(
        SD35, {"preset": "SAI reference", "layers": "7, 8, 9", "scale": 2.5, "start": 0.01, "end": 0.2,
               "gating": "step fraction", "fast_path": True},
        "a woman reading under a tree, full body, detailed hands", {"seed": 23, "steps": 40, "cfg": 4.0},
        "snrt_sd35_slg",
        "## SD 3.5 Medium with Skip Layer Guidance\n\nStability AI's reference settings: "
        "SLG on joint blocks 7, 8, 9 with scale 2.5 on steps 0.01 < i/N < 0.20, cfg 4, dpmpp_2m, shift 3. "
        "Files: `" + SD35 + "` in `models/checkpoints`; `" + CLIP_L + "`, `" + CLIP_G + "`, `" + T5 + "` in "
        "`models/text_encoders`. The fast path forks the skip branch at block 7 (14/24 of a pass instead of "
        "a full one); the log says which path ran.")


def sd35_large_slg():
    return sd35_slg(
        SD35_LARGE, {"preset": "custom", "layers": "7, 8, 9", "scale": 3.0, "start": 0.01, "end": 0.15,
                     "gating": "sigma percent", "fast_path": True},
        "a lighthouse on a cliff at dusk, crashing waves, detailed", {"seed": 7, "steps": 40, "cfg": 4.5},
        "snrt_sd35_large_slg",
        "## SD 3.5 Large with Skip Layer Guidance\n\nSampling as Stability's sd3_infer.py "
        "configures Large (shift 3, cfg 4.5, dpmpp_2m, 40 steps). Nobody has published SLG settings for Large "
        "(Stability's are for Medium), so this starts from ComfyUI's SkipLayerGuidanceDiT values, joint "
        "blocks 7, 8, 9 at scale 3 on the first 1–15 % of σ, as a custom preset you can tune: try lower "
        "scale or deeper blocks if the image over-cooks. The node detects the 38-block MMDiT; the fast path "
        "keeps the cond pass's state at block 7 and runs blocks 10–37 for the skip branch. Files: `"
        + SD35_LARGE + "` in `models/checkpoints`; `" + CLIP_L + "`, `" + CLIP_G + "`, `" + T5 + "` in "
        "`models/text_encoders`.", note_y=-340)


def pyramid_custom_sampler():
    return sdxl_front() + [
        {"id": 6, "type": "EmptyLatentImage", "pos": [0, 420], "widgets": {"width": 1024, "height": 1024,
                                                                           "batch_size": 1}},
        {"id": 7, "type": "SNRTPyramidNoise", "pos": [740, 200],
         "widgets": {"seed": 7, "iterations": 6, "discount": 0.3, "offset_strength": 0.1}},
        {"id": 8, "type": "SNRTPreviewNoise", "pos": [1100, 560], "links": {"noise": (7, 0), "latent": (6, 0)}},
        {"id": 9, "type": "PreviewImage", "pos": [1500, 560], "size": [420, 240], "links": {"images": (8, 0)}},
        {"id": 10, "type": "CFGGuider", "pos": [1100, 0], "links": {"model": (3, 0), "positive": (4, 0),
                                                                     "negative": (5, 0)}, "widgets": {"cfg": 5.0}},
        {"id": 11, "type": "KSamplerSelect", "pos": [1100, 160], "widgets": {"sampler_name": "euler_ancestral"}},
        {"id": 12, "type": "SNRTPyramidNoiseSampler", "pos": [1100, 260], "links": {"sampler": (11, 0)},
         "widgets": {"iterations": 6, "discount": 0.3, "offset_strength": 0.0}},
        {"id": 13, "type": "BasicScheduler", "pos": [740, 420], "links": {"model": (3, 0)},
         "widgets": {"scheduler": "ztsnr_exponential", "steps": 28, "denoise": 1.0}},
        {"id": 14, "type": "SamplerCustomAdvanced", "pos": [1100, 400],
         "links": {"noise": (7, 0), "guider": (10, 0), "sampler": (12, 0), "sigmas": (13, 0), "latent_image": (6, 0)}},
        *decode_and_save(15, (14, 0), (1, 2), "snrt_pyramid_custom", x=1500),
        note(20, [0, -320], "## Pyramid noise with SamplerCustomAdvanced\n\n**Pyramid Noise** is the initial "
             "noise (octaves of coarser noise, weight discountⁱ, plus offset noise); **Pyramid Noise Sampler** makes "
             "euler_ancestral's per-step noise pyramid noise too. **Preview Noise** shows the noise and its "
             "spectrum: a higher discount lifts the low frequencies more (bolder mean colours and shapes). "
             "Model: `" + NOOB + "`."),
    ]


def pyramid_ksampler_advanced():
    return sdxl_front() + [
        {"id": 6, "type": "EmptyLatentImage", "pos": [0, 420], "widgets": {"width": 1024, "height": 1024,
                                                                           "batch_size": 1}},
        {"id": 7, "type": "SNRTPyramidLatent", "pos": [740, 200], "links": {"model": (3, 0), "latent": (6, 0)},
         "widgets": {"scheduler": "ztsnr_exponential", "steps": 28, "start_at_step": 0, "seed": 7, "iterations": 6,
                     "discount": 0.3, "offset_strength": 0.1}},
        {"id": 8, "type": "KSamplerAdvanced", "pos": [1100, 0], "size": [320, 520],
         "links": {"model": (3, 0), "positive": (4, 0), "negative": (5, 0), "latent_image": (7, 0)},
         "widgets": {"add_noise": "disable", "noise_seed": 0, "steps": 28, "cfg": 5.0, "sampler_name": "dpmpp_2m",
                     "scheduler": "ztsnr_exponential", "start_at_step": 0, "end_at_step": 10000,
                     "return_with_leftover_noise": "disable"}},
        *decode_and_save(9, (8, 0), (1, 2), "snrt_pyramid_ksampler"),
        note(20, [0, -320], "## Pyramid noise with KSamplerAdvanced\n\n**Pyramid Noise Latent** returns the latent "
             "already noised to the first σ of the schedule, scaled exactly as ComfyUI scales its own noise. "
             "KSamplerAdvanced must have **add_noise: disable** and the same scheduler, steps and start_at_step. "
             "Model: `" + NOOB + "`."),
    ]


def high_resolution_hires_fix():
    return sdxl_front() + [
        {"id": 6, "type": "SNRTAspectBucket", "pos": [0, 420],
         "widgets": {"aspect_width": 16, "aspect_height": 9, "pixel_budget": 1024 * 1024,
                     "latent_type": "SD1 / SDXL (4 channels)", "batch_size": 1}},
        {"id": 7, "type": "KSampler", "pos": [1100, 0], "size": [320, 480], "title": "First pass (training size)",
         "links": {"model": (3, 0), "positive": (4, 0), "negative": (5, 0), "latent_image": (6, 0)},
         "widgets": {"seed": 42, "steps": 28, "cfg": 5.0, "sampler_name": "dpmpp_2m", "scheduler": "ztsnr_exponential",
                     "denoise": 1.0}},
        {"id": 8, "type": "LatentUpscaleBy", "pos": [1100, 520], "links": {"samples": (7, 0)},
         "widgets": {"upscale_method": "bislerp", "scale_by": 2.0}},
        {"id": 9, "type": "SNRTSigmaMaxScale", "pos": [1460, 520], "links": {"model": (3, 0), "latent": (8, 0)},
         "widgets": {"width": 2688, "height": 1536, "base_side": 0, "rule": "√ pixels (SD3 paper, NovelAI)",
                     "steps": 28}},
        {"id": 10, "type": "KSampler", "pos": [1820, 0], "size": [320, 480], "title": "Second pass (2048-class canvas)",
         "links": {"model": (9, 0), "positive": (4, 0), "negative": (5, 0), "latent_image": (8, 0)},
         "widgets": {"seed": 43, "steps": 28, "cfg": 5.0, "sampler_name": "dpmpp_2m", "scheduler": "ztsnr_exponential",
                     "denoise": 0.45}},
        *decode_and_save(11, (10, 0), (1, 2), "snrt_hires", x=2200),
        note(20, [0, -320], "## High resolution: bucket, then a hires fix with σ_max scaled\n\n**Empty Latent "
             "(Aspect Bucket)** picks the trained 16:9 bucket (1344×768). The first pass samples there; the latent "
             "is upscaled 2× to a 2048-class canvas (2688×1536), and **Scale σ_max by Resolution** (reading that "
             "latent) raises the ztsnr σ_hi by √(w·h)/1024 ≈ 2 for the second pass, as NovelAI's rule asks. Lower "
             "the second pass's denoise to keep more of the first pass. Model: `" + NOOB + "`.", size=(460, 280)),
    ]


def metadata_loader_front(ckpt_name):
    """Load Checkpoint (reads training metadata), its report shown as text."""
    return [
        {"id": 1, "type": "SNRTCheckpointLoader", "pos": [0, 120], "widgets": {"ckpt_name": ckpt_name}},
        {"id": 2, "type": "PreviewAny", "pos": [0, 320], "size": [560, 300], "title": "Report",
         "links": {"source": (1, 3)}},
    ]


def sdxl_vpred_checkpoint_metadata():
    return metadata_loader_front(NOOB) + [
        {"id": 4, "type": "CLIPTextEncode", "pos": [640, 260], "size": [330, 160], "title": "Positive",
         "links": {"clip": (1, 1)}, "widgets": {"text": POSITIVE}},
        {"id": 5, "type": "CLIPTextEncode", "pos": [640, 460], "size": [330, 160], "title": "Negative",
         "links": {"clip": (1, 1)}, "widgets": {"text": NEGATIVE}},
        {"id": 6, "type": "SNRTAspectBucket", "pos": [640, 0],
         "widgets": {"aspect_width": 2, "aspect_height": 3, "pixel_budget": 1024 * 1024,
                     "latent_type": "SD1 / SDXL (4 channels)", "batch_size": 1}},
        {"id": 7, "type": "BasicScheduler", "pos": [1040, 560], "links": {"model": (1, 0)},
         "widgets": {"scheduler": "ztsnr_exponential", "steps": 28, "denoise": 1.0}},
        {"id": 8, "type": "BasicScheduler", "pos": [1040, 720], "links": {"model": (1, 0)},
         "widgets": {"scheduler": "karras", "steps": 28, "denoise": 1.0}},
        {"id": 9, "type": "SNRTPreviewSigmas", "pos": [1400, 560], "links": {"sigmas": (7, 0), "sigmas_b": (8, 0), "model": (1, 0)},
         "widgets": {"label": "ztsnr_exponential", "label_b": "ComfyUI karras"}},
        {"id": 10, "type": "PreviewImage", "pos": [1760, 560], "size": [480, 260], "links": {"images": (9, 0)}},
        {"id": 11, "type": "KSampler", "pos": [1040, 0], "size": [320, 480],
         "links": {"model": (1, 0), "positive": (4, 0), "negative": (5, 0), "latent_image": (6, 0)},
         "widgets": {"seed": 42, "steps": 28, "cfg": 5.0, "sampler_name": "dpmpp_2m", "scheduler": "ztsnr_exponential",
                     "denoise": 1.0}},
        *decode_and_save(12, (11, 0), (1, 2), "snrt_sdxl_checkpoint_metadata", x=1400),
        note(20, [0, -320], "## Load a checkpoint by what it says about its training\n\n**Load Checkpoint (reads "
             "training metadata)** loads `" + NOOB + "` exactly as Load Checkpoint does, then reads the file's "
             "safetensors header: the `v_pred` / `ztsnr` keys and, for files that lost them in a merge or "
             "re-save, `modelspec.prediction_type`, `modelspec.predict_key`, `ss_v_parameterization` and "
             "`ss_zero_terminal_snr`. The **Report** says what it found, what it decided and which source won. "
             "No V-Prediction node is needed: KSampler's **ztsnr_exponential** reads the loader's decision, and "
             "**Preview Sigmas** shows it against karras. Swap in your own checkpoint's name.", size=(560, 280)),
    ]


def sd35_medium_checkpoint_metadata():
    return metadata_loader_front(SD35) + [
        {"id": 3, "type": "BasicScheduler", "pos": [640, 120], "links": {"model": (1, 0)},
         "widgets": {"scheduler": "sgm_uniform", "steps": 40, "denoise": 1.0}},
        {"id": 4, "type": "SNRTPreviewSigmas", "pos": [1000, 120], "links": {"sigmas": (3, 0), "model": (1, 0)},
         "widgets": {"label": "SD3.5 Medium as loaded (shift 3), sgm_uniform", "label_b": "B"}},
        {"id": 5, "type": "SaveImage", "pos": [1360, 120], "size": [480, 300], "links": {"images": (4, 0)},
         "widgets": {"filename_prefix": "snrt_sd35_sigmas"}},
        note(20, [0, -320], "## SD 3.5 Medium through the metadata loader\n\n`" + SD35 + "` is a flow-matching "
             "model: its σ runs 0…1 with a shift, and the ε / v prediction and ZTSNR metadata of SD1/SDXL "
             "checkpoints do not apply (kohya even writes `modelspec.prediction_type = epsilon` on SD3 files). "
             "The loader returns it exactly as Load Checkpoint does and its **Report** says so. **Preview Sigmas** "
             "saves the schedule the model samples with (shift 3.0, from the model itself). Text encoders load "
             "separately, as in the SLG workflow.", size=(520, 260)),
    ]


#: Train LoRA's inputs as the bundled training workflow sets them (each host takes those it declares: 0.33 added
#: some): ComfyUI's own defaults but for steps and rank.
TRAIN_LORA = {"batch_size": 1, "grad_accumulation_steps": 1, "steps": 500, "learning_rate": 0.0005, "rank": 8,
              "optimizer": "AdamW", "loss_function": "MSE", "seed": 0, "training_dtype": "bf16", "lora_dtype": "bf16",
              "algorithm": "LoRA", "gradient_checkpointing": True, "checkpoint_depth": 1, "offloading": False,
              "existing_lora": "[None]", "quantized_backward": False, "bucket_mode": False, "bypass_mode": False}


def train_lora_layout(object_info: dict) -> str:
    """Which Train LoRA this host has: 0.3.x returns (model, lora, loss_map, steps), 0.33 dropped the model."""
    return "model_first" if object_info["TrainLoraNode"]["output"][0] == "MODEL" else "lora_first"


def sdxl_train_vpred_ztsnr_lora(object_info: dict, layout: str):
    """NovelAI V3's recipe on an ε SDXL: Training Objective (v-prediction, ZTSNR, Min-SNR-5) → Train LoRA → save →
    load → sample the way a v-pred ZTSNR model samples."""
    first = 1 if layout == "model_first" else 0  # Train LoRA's lora output; loss_map and steps follow it

    def declared(kind: str, values: dict) -> dict:  # the values this host's node declares (0.33 added inputs)
        return {k: v for k, v in values.items() if k in {name for name, *_ in workflow_tools.widget_slots(object_info[kind])}}
    return [
        {"id": 1, "type": "CheckpointLoaderSimple", "pos": [0, 120], "widgets": {"ckpt_name": SDXL_BASE}},
        {"id": 2, "type": "LoadImage", "pos": [0, 420], "size": [320, 360], "title": "Training image",
         "widgets": {"image": "example.png"}},
        {"id": 3, "type": "VAEEncode", "pos": [380, 420], "links": {"pixels": (2, 0), "vae": (1, 2)}},
        {"id": 4, "type": "CLIPTextEncode", "pos": [380, 600], "size": [330, 140], "title": "Caption",
         "links": {"clip": (1, 1)}, "widgets": {"text": "a photo"}},
        {"id": 5, "type": "SNRTTrainingObjective", "pos": [380, 0], "links": {"model": (1, 0)},
         "widgets": {"loss_weighting": "Min-SNR-γ", "min_snr_gamma": 5.0, "timestep_sampling": "uniform (trainer's own)",
                     "logit_mean": 0.0, "logit_std": 1.0, "mode_scale": 1.29, "range_unit": "timestep (0–1000)",
                     "range_min": 0.0, "range_max": 1000.0, "shift_width": 0, "shift_height": 0, "noise_offset": 0.0,
                     "adaptive_noise_offset": 0.0, "pyramid_iterations": 0, "pyramid_discount": 0.3,
                     "ip_noise_gamma": 0.0, "prediction": "v_prediction", "zsnr": "on"}},
        # 0.3.x's Train LoRA fails on a single LATENT ("local variable 'multi_res'"): give it a list of them.
        *([{"id": 16, "type": "RepeatLatentBatch", "pos": [380, 780], "links": {"samples": (3, 0)},
            "widgets": {"amount": 2}},
           {"id": 17, "type": "RebatchLatents", "pos": [380, 920], "links": {"latents": (16, 0)},
            "widgets": {"batch_size": 1}}] if layout == "model_first" else []),
        {"id": 6, "type": "TrainLoraNode", "pos": [760, 0], "size": [340, 620],
         "links": {"model": (5, 0), "latents": (17, 0) if layout == "model_first" else (3, 0), "positive": (4, 0)},
         "widgets": declared("TrainLoraNode", TRAIN_LORA)},
        {"id": 7, "type": "SaveLoRA", "pos": [1140, 0], "links": {"lora": (6, first)},
         "widgets": {"prefix": "loras/snrt_sdxl_vpred_ztsnr", "steps": TRAIN_LORA["steps"]}},
        {"id": 8, "type": "LossGraphNode", "pos": [1140, 200], "size": [360, 320], "links": {"loss": (6, first + 1)},
         "widgets": {"filename_prefix": "snrt_training_loss"}},
        {"id": 9, "type": "LoraModelLoader", "pos": [1140, 560], "links": {"model": (1, 0), "lora": (6, first)},
         "widgets": declared("LoraModelLoader", {"strength_model": 1.0, "bypass": False})},
        {"id": 10, "type": "SNRTVPrediction", "pos": [1540, 560], "links": {"model": (9, 0)},
         "widgets": {"prediction": "v_prediction", "zsnr": "on", "terminal_sigma": "NovelAI (20000)",
                     "skip_cfg_on_terminal_step": False}},
        {"id": 11, "type": "CLIPTextEncode", "pos": [1540, 760], "size": [330, 120], "title": "Negative",
         "links": {"clip": (1, 1)}, "widgets": {"text": NEGATIVE}},
        {"id": 12, "type": "EmptyLatentImage", "pos": [1540, 940], "widgets": {"width": 1024, "height": 1024,
                                                                              "batch_size": 1}},
        {"id": 13, "type": "KSampler", "pos": [1900, 560], "size": [320, 480],
         "links": {"model": (10, 0), "positive": (4, 0), "negative": (11, 0), "latent_image": (12, 0)},
         "widgets": {"seed": 42, "steps": 20, "cfg": 5.0, "sampler_name": "dpmpp_2m", "scheduler": "ztsnr_exponential",
                     "denoise": 1.0}},
        *decode_and_save(14, (13, 0), (1, 2), "snrt_trained_vpred_ztsnr", x=2260),
        note(20, [0, -360], "## Train a v-prediction ZTSNR LoRA (NovelAI V3's recipe)\n\nOn an ε SDXL (`" + SDXL_BASE +
             "`), **Training Objective (SNR)** makes ComfyUI's own **Train LoRA** train towards v-prediction with Zero "
             "Terminal SNR and Min-SNR-5 weighting, as NovelAI V3 did. Connect it last, right before Train LoRA. Put "
             "your images in (Load Image → VAE Encode; a batch of latents works too); 500 steps at rank 8 is a first "
             "look, more images want more. The LoRA is saved under `output/loras/`, its loss plotted, and "
             "sampled right away: **Load LoRA Model** on the base checkpoint, then **V-Prediction / ZTSNR** set the "
             "same way (the checkpoint itself stays ε), then KSampler with **ztsnr_exponential**. This file is for "
             + ("ComfyUI 0.3.x, whose Train LoRA also returns a model (0.3.75 tested) and needs a list of latents "
                "(Repeat Latent Batch → Rebatch Latents: one image fails there with 'multi_res'; with a batch of "
                "your images drop Repeat)." if layout == "model_first" else
                "ComfyUI releases whose Train LoRA returns the LoRA first (0.33.0 tested); for 0.3.x use the "
                "`_comfyui_0.3` file.")
             , size=(560, 300)),
    ]


#: Workflows that exist per Train LoRA layout: each host builds, validates and runs the one for its layout.
HOST_WORKFLOWS = {
    "sdxl_train_vpred_ztsnr_lora": ("lora_first", sdxl_train_vpred_ztsnr_lora),
    "sdxl_train_vpred_ztsnr_lora_comfyui_0.3": ("model_first", sdxl_train_vpred_ztsnr_lora),
}

WORKFLOWS = {
    "sdxl_vpred_ztsnr_ksampler": sdxl_vpred_ztsnr_ksampler,
    "sdxl_vpred_ztsnr_custom_sampler": sdxl_vpred_ztsnr_custom_sampler,
    "sd35_medium_skip_layer_guidance": sd35_medium_slg,
    "sd35_large_skip_layer_guidance": sd35_large_slg,
    "pyramid_noise_custom_sampler": pyramid_custom_sampler,
    "pyramid_noise_ksampler_advanced": pyramid_ksampler_advanced,
    "high_resolution_hires_fix": high_resolution_hires_fix,
    "sdxl_vpred_checkpoint_metadata": sdxl_vpred_checkpoint_metadata,
    "sd35_medium_checkpoint_metadata": sd35_medium_checkpoint_metadata,
}


def for_host(object_info: dict) -> list[str]:
    """The bundled workflows this host can load and run: all but the other Train LoRA layout's."""
    layout = train_lora_layout(object_info)
    return list(WORKFLOWS) + [name for name, (wanted, _) in HOST_WORKFLOWS.items() if wanted == layout]


def all_names() -> list[str]:
    return list(WORKFLOWS) + list(HOST_WORKFLOWS)


def build_all(object_info: dict) -> dict[str, dict]:
    """Every workflow this host builds (tools.build_workflows.for_host)."""
    built = {name: workflow_tools.build(make(), object_info) for name, make in WORKFLOWS.items()}
    for name in for_host(object_info)[len(WORKFLOWS):]:
        layout, make = HOST_WORKFLOWS[name]
        built[name] = workflow_tools.build(make(object_info, layout), object_info)
    return built


def render(workflow: dict) -> str:
    return json.dumps(workflow, indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    """Start the host's server, build every workflow from its /object_info, write workflows/*.json."""
    import os
    import subprocess
    import urllib.request

    from tools import host
    comfy, python = Path(os.environ["SNRT_COMFYUI"]), Path(os.environ["SNRT_PYTHON"])
    port = host.free_port()
    proc = subprocess.Popen(host.server_command(comfy, python, host.make_base_directory(), port), cwd=comfy,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        host.wait_for_server(port, proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/object_info") as response:
            object_info = json.load(response)
    finally:
        proc.terminate()
    for name, workflow in build_all(object_info).items():
        (ROOT / "workflows" / f"{name}.json").write_text(render(workflow))
        print("wrote", f"workflows/{name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
