"""Every bundled workflow executed end to end on the real ComfyUI server.

The workflow is converted to an API prompt as the graph editor would send it; only the checkpoint
and text-encoder loaders are swapped for fixture loaders reading tiny random-weight checkpoints of
the real architectures, written here under the public file names. Load Checkpoint (reads training
metadata) is not swapped: it loads tiny files from models/checkpoints through ComfyUI's own detection.
Every other node, sampler, scheduler and widget value stays as bundled, canvases included; the one change
for this 2-core CPU is fewer steps where a bundled run would take minutes (CPU_STEPS, CPU_TRAINING). The
bundled step counts themselves pass the server's own validation in test_workflows.py.
"""
import copy
import io
import json
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import torch

from tools import build_workflows
from tools import workflow_tools

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"
ARTIFACTS = ROOT / "artifacts" / "workflow-runs"  # the images, for a look after the run
SWAPS = {"CheckpointLoaderSimple": "SNRTTestTinyCheckpointLoader", "TripleCLIPLoader": "SNRTTestTinyTripleCLIPLoader"}
#: (width, height) of every saved image: SDXL's 2:3 bucket, SD3.5's 1024², the hires pass at 2× 16:9.
EXPECTED_SIZES = {
    "sdxl_vpred_ztsnr_ksampler": (832, 1216),
    "sdxl_vpred_ztsnr_custom_sampler": (832, 1216),
    "sd35_medium_skip_layer_guidance": (1024, 1024),
    "sd35_large_skip_layer_guidance": (1024, 1024),
    "pyramid_noise_custom_sampler": (1024, 1024),
    "pyramid_noise_ksampler_advanced": (1024, 1024),
    "high_resolution_hires_fix": (2688, 1536),
    "sdxl_vpred_checkpoint_metadata": (832, 1216),
    "sd35_medium_checkpoint_metadata": (960, 400),  # it saves its σ plot
    "sdxl_train_vpred_ztsnr_lora": (1024, 1024),
    "sdxl_train_vpred_ztsnr_lora_comfyui_0.3": (1024, 1024),
}
#: Trained workflows load their checkpoint with the core loader: on 0.33 Train LoRA rebuilds the model from it.
TRAINING = {"sdxl_train_vpred_ztsnr_lora", "sdxl_train_vpred_ztsnr_lora_comfyui_0.3"}
#: The one change besides loaders, for this 2-core CPU: Train LoRA in fp32 (bf16 matrix products are emulated here,
#: 19 s a step) and 4 steps instead of the bundled 500. The bundled values are what a GPU wants.
CPU_TRAINING = {"training_dtype": "fp32", "lora_dtype": "fp32", "steps": 4}
#: Sampling steps per workflow where the bundled count costs minutes here: an SD3.5 step at 1024² is ~4 s on this
#: CPU (4096 image tokens through 24 or 38 blocks), the hires pass ~3 s at 2688×1536. Each SLG window still
#: covers a step at 10 (step fraction 0.01–0.2 and σ percent 0.01–0.15 at shift 3: step 1 each).
CPU_STEPS = {"sd35_medium_skip_layer_guidance": 10, "sd35_large_skip_layer_guidance": 10,
             "high_resolution_hires_fix": 10}
SAMPLER_STEPS = {"KSampler", "KSamplerAdvanced", "BasicScheduler", "SNRTScheduler"}  # the nodes with a steps input


@pytest.fixture(scope="module")
def tiny_files(live_server, comfy_host, public_model_files):
    """Tiny checkpoints under the names the workflows use, in the server's (temporary) models folder. The
    metadata loader reads models/checkpoints itself, through ComfyUI's own detection (the fixture pack
    registers configs for the toy widths), so real tiny files replace the empty placeholders there."""
    from tools import tiny_checkpoints
    models = live_server.base / "models"
    tiny_checkpoints.write_detectable_checkpoint(models / "checkpoints" / build_workflows.NOOB,
                                                 tiny_checkpoints.detectable_tensors("sdxl", seed=1), ("v_pred", "ztsnr"))
    tiny_checkpoints.write_detectable_checkpoint(models / "checkpoints" / build_workflows.SDXL_BASE,
                                                 tiny_checkpoints.detectable_tensors("sdxl", seed=3))
    from PIL import Image  # the training workflow's image: a 256² gradient (a 32² latent)
    ramp = torch.linspace(0, 255, 256).to(torch.uint8)
    pixels = torch.stack([ramp[None, :].expand(256, 256), ramp[:, None].expand(256, 256),
                          torch.full((256, 256), 128, dtype=torch.uint8)], -1)
    Image.fromarray(pixels.numpy()).save(live_server.base / "input" / "example.png")
    tiny_checkpoints.write_detectable_checkpoint(models / "checkpoints" / build_workflows.SD35,
                                                 tiny_checkpoints.detectable_tensors("sd3", seed=2))
    tiny_checkpoints.write_checkpoint(models / "tiny_checkpoints" / build_workflows.NOOB, "sdxl", seed=1,
                                      v_pred=True, ztsnr=True)
    tiny_checkpoints.write_checkpoint(models / "tiny_checkpoints" / build_workflows.SD35, "sd3", seed=2)
    tiny_checkpoints.write_checkpoint(models / "tiny_checkpoints" / build_workflows.SD35_LARGE, "sd3", seed=4,
                                      **tiny_checkpoints.SD3_LARGE_OVERRIDES)
    tiny_checkpoints.write_text_encoders(models / "tiny_text_encoders", {
        "clip_l": build_workflows.CLIP_L, "clip_g": build_workflows.CLIP_G, "t5xxl": build_workflows.T5})
    yield live_server.get_json("/object_info")
    # Back to the empty placeholders, for the tests that expect execution to stop at the loaders.
    for name in (build_workflows.NOOB, build_workflows.SDXL_BASE, build_workflows.SD35):
        (models / "checkpoints" / name).write_bytes(b"")


def with_tiny_loaders(prompt: dict, stem: str = "") -> dict:
    swapped = copy.deepcopy(prompt)
    if stem in CPU_STEPS:
        samplers = [node for node in swapped.values() if node["class_type"] in SAMPLER_STEPS]
        assert samplers and all(node["inputs"]["steps"] > CPU_STEPS[stem] for node in samplers)
        for node in samplers:
            node["inputs"]["steps"] = CPU_STEPS[stem]
    if stem in TRAINING:
        for node in swapped.values():
            if node["class_type"] == "TrainLoraNode":
                assert {k: node["inputs"][k] for k in CPU_TRAINING} == {"training_dtype": "bf16", "lora_dtype": "bf16",
                                                                       "steps": build_workflows.TRAIN_LORA["steps"]}
                node["inputs"].update(CPU_TRAINING)
        return swapped
    for node in swapped.values():
        node["class_type"] = SWAPS.get(node["class_type"], node["class_type"])
    return swapped


def saved_images(live_server, entry: dict, kind: str = "output") -> list:
    from PIL import Image
    images = []
    for output in entry["outputs"].values():
        for image in output.get("images", []):
            if image["type"] != kind:
                continue
            query = urllib.parse.urlencode({k: image[k] for k in ("filename", "subfolder", "type")})
            with urllib.request.urlopen(live_server.url(f"/view?{query}"), timeout=60) as response:
                images.append(Image.open(io.BytesIO(response.read())).convert("RGB"))
    return images


def run(live_server, prompt: dict) -> dict:
    entry = live_server.run_prompt(prompt, timeout_s=900)
    errors = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
    assert not errors, json.dumps(errors, indent=1)[:4000]
    assert entry["status"]["status_str"] == "success"
    return entry


def bundled_prompt(stem: str, object_info: dict) -> dict:
    return workflow_tools.to_api(json.loads((WORKFLOWS / f"{stem}.json").read_text()), object_info)


@pytest.mark.parametrize("stem", EXPECTED_SIZES)
def test_bundled_workflow_runs_end_to_end(live_server, tiny_files, stem):
    if stem not in build_workflows.for_host(tiny_files):  # the other Train LoRA's file: this host refuses it
        problems = workflow_tools.validate(json.loads((WORKFLOWS / f"{stem}.json").read_text()), tiny_files)
        assert any("TrainLoraNode" in p for p in problems), problems
        return
    bundled = bundled_prompt(stem, tiny_files)
    prompt = with_tiny_loaders(bundled, stem)
    swapped = {k for k in prompt if prompt[k]["class_type"] != bundled[k]["class_type"]}
    assert {bundled[k]["class_type"] for k in swapped} <= set(SWAPS)
    assert swapped or stem in TRAINING or any(n["class_type"] == "SNRTCheckpointLoader" for n in bundled.values())
    changed = {k for k in prompt if prompt[k] != bundled[k]} - swapped
    assert all(prompt[k]["class_type"] in {"TrainLoraNode", *SAMPLER_STEPS} for k in changed), \
        "only loaders and the CPU's training settings and step counts change"
    assert all({**prompt[k]["inputs"], "steps": None} == {**bundled[k]["inputs"], "steps": None} for k in changed
               if prompt[k]["class_type"] in SAMPLER_STEPS), "a sampler changes its steps only"
    assert all(prompt[k]["inputs"] == bundled[k]["inputs"] for k in swapped), "loaders keep the file names"

    images = saved_images(live_server, run(live_server, prompt))
    assert len(images) == 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    images[0].save(ARTIFACTS / f"{stem}.png")
    assert images[0].size == EXPECTED_SIZES[stem]
    assert any(low < high for low, high in images[0].getextrema()), "a flat image: nothing reached the decoder"
    if stem in TRAINING:  # the LoRA was saved where ComfyUI's loaders find it
        saved = sorted((live_server.base / "output" / "loras").glob("snrt_sdxl_vpred_ztsnr*.safetensors"))
        assert saved, "no LoRA saved"
        from safetensors.torch import load_file
        assert any(k.endswith("lora_up.weight") or "lora" in k for k in load_file(saved[-1]))


def test_skip_layer_guidance_fast_path_gives_the_plain_paths_image(live_server, tiny_files):
    """The bundled SD3.5 workflow (fast path on, its 40 steps) and the same graph with fast_path off, both at
    512² (a quarter of the tokens: 40 steps cost ~20 s here, not 3 minutes): the log names both paths, and
    the two images agree to one 8-bit level."""
    import numpy as np
    bundled = bundled_prompt("sd35_medium_skip_layer_guidance", tiny_files)
    fast = with_tiny_loaders(bundled)
    latent = next(n for n in fast.values() if n["class_type"] == "EmptySD3LatentImage")
    assert (latent["inputs"]["width"], latent["inputs"]["height"]) == (1024, 1024)
    latent["inputs"].update(width=512, height=512)
    slg = next(k for k, n in fast.items() if n["class_type"] == "SNRTSkipLayerGuidance")
    assert fast[slg]["inputs"]["fast_path"] is True
    assert next(n for n in fast.values() if n["class_type"] == "KSampler")["inputs"]["steps"] == 40
    plain = copy.deepcopy(fast)
    plain[slg]["inputs"]["fast_path"] = False
    log_start = len(live_server.log())
    fast_image = saved_images(live_server, run(live_server, fast))[0]
    assert "fast path, forked at block 7: the skip branch runs 14 blocks" in live_server.log()[log_start:]
    plain_start = len(live_server.log())
    plain_image = saved_images(live_server, run(live_server, plain))[0]
    assert "plain path (a full extra cond pass), fast path off" in live_server.log()[plain_start:]
    assert fast_image.size == plain_image.size == (512, 512)
    difference = np.abs(np.asarray(fast_image, dtype=np.int16) - np.asarray(plain_image, dtype=np.int16))
    assert difference.max() <= 1, f"{(difference > 1).mean():.2%} of pixels differ by more than one level"
