"""The pack on a live ComfyUI server, checked over its HTTP API."""
import re
import urllib.error

import pytest
import torch

OUR_NODES = ["SNRTScheduler", "SNRTSigmaMaxScale", "SNRTVPrediction"]
ZTSNR_NAMES = ["ztsnr_karras", "ztsnr_exponential", "ztsnr_beta", "ztsnr_kl_optimal", "ztsnr_normal", "ztsnr_simple"]


@pytest.fixture(scope="module")
def object_info(live_server):
    return live_server.get_json("/object_info")


@pytest.mark.parametrize("node_id", OUR_NODES)
def test_node_is_served_with_the_pack_as_python_module(object_info, node_id):
    info = object_info[node_id]
    assert info["python_module"] == "custom_nodes.snr_toolkit"
    assert info["description"].strip()
    assert info["display_name"] and info["display_name"] != node_id
    for section in ("required", "optional"):
        for name, spec in info["input"].get(section, {}).items():
            assert spec[1].get("tooltip", "").strip(), f"{node_id}.{name} has no tooltip"
    assert all(t.strip() for t in info["output_tooltips"]), f"{node_id} has an output without a tooltip"


@pytest.mark.parametrize("node_id", ["KSampler", "KSamplerAdvanced", "BasicScheduler"])
def test_scheduler_combos_carry_our_names_and_the_other_packs(object_info, node_id):
    spec = object_info[node_id]["input"]["required"]["scheduler"]
    combo = spec[1]["options"] if spec[0] == "COMBO" else spec[0]  # V3 nodes serialise combos as COMBO
    for name in ZTSNR_NAMES + ["fixture_linear", "karras", "simple"]:
        assert combo.count(name) == 1, f"{name} in {node_id}: {combo}"


# ComfyUI 0.33's log handler prefixes each record with a coloured level tag ("\x1b[32m[INFO]\x1b[0m ");
# 0.3.75 writes the bare message. Both reduce to the bare message once the tag and colours are gone.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
LEVEL_TAG = re.compile(r"^\[(?:DEBUG|DETAIL|INFO|WARNING|ERROR|CRITICAL)\] ", re.M)
IMPORT_TIME = re.compile(r"^\s*[\d.]+ seconds( \(IMPORT FAILED\))?: .*custom_nodes/snr_toolkit\s*$", re.M)
# A traceback: its header, indented frames, then the exception line.
TRACEBACK = re.compile(r"Traceback \(most recent call last\):\n(?:[ \t].*\n)+.*")


def plain_log(log: str) -> str:
    """The server log without the level tags and colours some ComfyUI versions add."""
    return LEVEL_TAG.sub("", ANSI_ESCAPE.sub("", log))


def pack_import_problems(log: str) -> list[str]:
    """What the log says went wrong importing the pack: a failed import time, or a traceback naming it."""
    log = plain_log(log)
    times = IMPORT_TIME.findall(log)
    problems = [] if times == [""] else [f"the pack's import-time lines say {times or 'nothing'}"]
    problems += [line for line in log.splitlines() if re.search(r"IMPORT FAILED: .*snr_toolkit", line)]
    return problems + [block[:2000] for block in TRACEBACK.findall(log) if "snr_toolkit" in block]


@pytest.mark.parametrize("style", ["ComfyUI 0.3.75", "ComfyUI 0.33"])
def test_the_log_check_catches_a_failed_import_in_either_log_style(style):
    """Each log style as the two ComfyUI versions' nodes.py / app/logger.py write it, with the pack failing."""
    colours = {"INFO": "\x1b[32m", "WARNING": "\x1b[1m\x1b[33m"}  # app/logger.py's ANSI_LEVEL_COLORS (+ bold)
    tag = (lambda level: "") if style == "ComfyUI 0.3.75" else (lambda level: f"{colours[level]}[{level}]\x1b[0m ")
    ok = f"{tag('INFO')}   0.1 seconds: /tmp/b/custom_nodes/snr_toolkit\n"
    failed = f"{tag('INFO')}   0.1 seconds (IMPORT FAILED): /tmp/b/custom_nodes/snr_toolkit\n"
    traceback = (f"{tag('WARNING')}Traceback (most recent call last):\n"
                 '  File "/tmp/b/custom_nodes/snr_toolkit/nodes/a.py", line 1, in <module>\n'
                 "ImportError: y\n"
                 f"{tag('WARNING')}Cannot import /tmp/b/custom_nodes/snr_toolkit module for custom nodes: y\n")
    assert pack_import_problems("Import times for custom nodes:\n" + ok) == []
    assert pack_import_problems("Import times for custom nodes:\n" + failed)
    assert any("ImportError: y" in p for p in pack_import_problems(traceback + ok))
    assert pack_import_problems("Import times for custom nodes:\n")  # the pack not loaded at all


def test_the_log_has_no_import_error_from_the_pack(live_server, object_info):
    assert "SNRTScheduler" in object_info
    problems = pack_import_problems(live_server.log())
    assert not problems, "\n".join(problems)


def test_prompt_validation_names_an_out_of_range_width(live_server, object_info):
    prompt = {
        "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
        "2": {"class_type": "SNRTSigmaMaxScale",
              "inputs": {"model": ["9", 0], "width": 0, "height": 1024, "base_side": 0}},
        "9": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "missing.safetensors"}},
        "3": {"class_type": "KSampler", "inputs": {
            "model": ["2", 0], "seed": 0, "steps": 4, "cfg": 5.0, "sampler_name": "euler",
            "scheduler": "ztsnr_karras", "positive": ["4", 0], "negative": ["4", 0], "latent_image": ["1", 0],
            "denoise": 1.0}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "x", "clip": ["9", 1]}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "t"}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["9", 2]}},
    }
    with pytest.raises(urllib.error.HTTPError) as raised:
        live_server.post_json("/prompt", {"prompt": prompt})
    body = raised.value.read().decode()
    assert raised.value.code == 400
    assert '"2"' in body and "width" in body and "smaller than min of 1" in body
    # ztsnr_karras itself is a valid value for KSampler's combo: no error is reported for node 3's scheduler.
    assert "scheduler" not in body


# --- whole prompts through /prompt -------------------------------------------------------------------

ISSUE_3_NODES = ["SNRTSkipLayerGuidance", "SNRTRescaleCFG", "SNRTPyramidNoise", "SNRTPyramidNoiseSampler",
                 "SNRTPyramidLatent", "SNRTAspectBucket"]


def saved_latents(live_server, entry, node_id):
    from safetensors.torch import load_file
    files = entry["outputs"][node_id]["latents"]
    return [load_file(str(live_server.base / "output" / f["subfolder"] / f["filename"]))["latent_tensor"]
            for f in files]


def assert_succeeded(entry):
    status = entry["status"]
    errors = [m for m in status.get("messages", []) if m[0] == "execution_error"]
    assert status["status_str"] == "success" and not errors, errors


@pytest.mark.parametrize("node_id", ISSUE_3_NODES)
def test_guidance_and_noise_nodes_are_served(object_info, node_id):
    test_node_is_served_with_the_pack_as_python_module(object_info, node_id)


def test_sd35_prompt_with_slg_rescale_and_pyramid_noise_runs(live_server, object_info):
    prompt = {
        "1": {"class_type": "SNRTTestTinyModel", "inputs": {"kind": "sd3.5 medium (24 blocks)"}},
        "2": {"class_type": "SNRTSkipLayerGuidance", "inputs": {
            "model": ["1", 0], "preset": "SAI reference", "layers": "7, 8, 9", "scale": 2.5, "start": 0.01,
            "end": 0.2, "gating": "step fraction"}},
        "3": {"class_type": "SNRTRescaleCFG", "inputs": {"model": ["2", 0], "multiplier": 0.7, "start_percent": 0.0,
                                                         "end_percent": 1.0}},
        "4": {"class_type": "SNRTTestTinyConditioning", "inputs": {"family": "sd3", "seed": 1}},
        "5": {"class_type": "SNRTTestTinyConditioning", "inputs": {"family": "sd3", "seed": 2}},
        "6": {"class_type": "CFGGuider", "inputs": {"model": ["3", 0], "positive": ["4", 0], "negative": ["5", 0],
                                                    "cfg": 4.0}},
        "7": {"class_type": "SNRTPyramidNoise", "inputs": {"seed": 1, "iterations": 6, "discount": 0.3,
                                                           "offset_strength": 0.1}},
        "8": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler_ancestral"}},
        "9": {"class_type": "SNRTPyramidNoiseSampler", "inputs": {"sampler": ["8", 0], "iterations": 6,
                                                                  "discount": 0.3, "offset_strength": 0.0}},
        "10": {"class_type": "BasicScheduler", "inputs": {"model": ["3", 0], "scheduler": "simple", "steps": 8,
                                                          "denoise": 1.0}},
        "11": {"class_type": "SNRTAspectBucket", "inputs": {"aspect_width": 2, "aspect_height": 3,
                                                            "pixel_budget": 65536,
                                                            "latent_type": "SD3 / SD3.5 / Flux (16 channels)",
                                                            "batch_size": 1}},
        "12": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["7", 0], "guider": ["6", 0],
                                                                 "sampler": ["9", 0], "sigmas": ["10", 0],
                                                                 "latent_image": ["11", 0]}},
        "13": {"class_type": "SaveLatent", "inputs": {"samples": ["12", 0], "filename_prefix": "snrt_sd35"}},
    }
    entry = live_server.run_prompt(prompt)
    assert_succeeded(entry)
    (latent,) = saved_latents(live_server, entry, "13")
    assert latent.shape == (1, 16, 32, 32) and bool(torch.isfinite(latent).all())
    assert "SNRTSkipLayerGuidance" in live_server.log() or "Skip Layer Guidance" in live_server.log()


def test_sdxl_ztsnr_prompt_with_every_foundation_node_and_the_pyramid_latent_runs(live_server, object_info):
    prompt = {
        "1": {"class_type": "SNRTTestTinyModel", "inputs": {"kind": "sdxl v-pred ztsnr"}},
        "2": {"class_type": "SNRTVPrediction", "inputs": {"model": ["1", 0], "prediction": "auto", "zsnr": "auto",
                                                          "terminal_sigma": "NovelAI (20000)",
                                                          "skip_cfg_on_terminal_step": True}},
        "3": {"class_type": "SNRTSigmaMaxScale", "inputs": {"model": ["2", 0], "width": 2048, "height": 2048,
                                                            "base_side": 0}},
        "4": {"class_type": "SNRTAspectBucket", "inputs": {"aspect_width": 1, "aspect_height": 1,
                                                           "pixel_budget": 65536,
                                                           "latent_type": "SD1 / SDXL (4 channels)", "batch_size": 1}},
        "5": {"class_type": "SNRTPyramidLatent", "inputs": {"model": ["3", 0], "latent": ["4", 0],
                                                            "scheduler": "ztsnr_karras", "steps": 6, "start_at_step": 0,
                                                            "seed": 3, "iterations": 6, "discount": 0.3,
                                                            "offset_strength": 0.1}},
        "6": {"class_type": "SNRTTestTinyConditioning", "inputs": {"family": "sdxl", "seed": 1}},
        "7": {"class_type": "SNRTTestTinyConditioning", "inputs": {"family": "sdxl", "seed": 2}},
        "8": {"class_type": "KSamplerAdvanced", "inputs": {
            "model": ["3", 0], "add_noise": "disable", "noise_seed": 0, "steps": 6, "cfg": 5.0,
            "sampler_name": "dpmpp_2m", "scheduler": "ztsnr_karras", "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0], "start_at_step": 0, "end_at_step": 10000, "return_with_leftover_noise": "disable"}},
        "9": {"class_type": "SNRTScheduler", "inputs": {"model": ["3", 0], "steps": 6, "shape": "beta",
                                                        "terminal": "infinite (20000)", "sigma_hi_base": 14.614642,
                                                        "denoise": 1.0, "latent": ["4", 0]}},
        "10": {"class_type": "RandomNoise", "inputs": {"noise_seed": 5}},
        "11": {"class_type": "CFGGuider", "inputs": {"model": ["3", 0], "positive": ["6", 0], "negative": ["7", 0],
                                                     "cfg": 5.0}},
        "12": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "dpmpp_2m_sde"}},
        "13": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["10", 0], "guider": ["11", 0],
                                                                 "sampler": ["12", 0], "sigmas": ["9", 0],
                                                                 "latent_image": ["4", 0]}},
        "14": {"class_type": "SaveLatent", "inputs": {"samples": ["8", 0], "filename_prefix": "snrt_ksampler"}},
        "15": {"class_type": "SaveLatent", "inputs": {"samples": ["13", 0], "filename_prefix": "snrt_custom"}},
    }
    entry = live_server.run_prompt(prompt)
    assert_succeeded(entry)
    for node in ("14", "15"):
        (latent,) = saved_latents(live_server, entry, node)
        assert latent.shape == (1, 4, 32, 32) and bool(torch.isfinite(latent).all())


def test_an_execution_error_names_the_problem(live_server, object_info):
    prompt = {
        "1": {"class_type": "SNRTTestTinyModel", "inputs": {"kind": "sdxl eps"}},
        "2": {"class_type": "SNRTSkipLayerGuidance", "inputs": {
            "model": ["1", 0], "preset": "SAI reference", "layers": "7, 8, 9", "scale": 2.5, "start": 0.01,
            "end": 0.2, "gating": "step fraction"}},
        "3": {"class_type": "SNRTTestTinyConditioning", "inputs": {"family": "sdxl", "seed": 1}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["2", 0], "seed": 0, "steps": 2, "cfg": 5.0, "sampler_name": "euler", "scheduler": "karras",
            "positive": ["3", 0], "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0}},
        "6": {"class_type": "SaveLatent", "inputs": {"samples": ["5", 0], "filename_prefix": "never"}},
    }
    entry = live_server.run_prompt(prompt)
    assert entry["status"]["status_str"] == "error"
    (error,) = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
    assert error["node_type"] == "SNRTSkipLayerGuidance" and "UNet" in error["exception_message"]
