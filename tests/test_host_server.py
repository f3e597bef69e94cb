"""The pack on a live ComfyUI server, checked over its HTTP API."""
import re
import urllib.error

import pytest

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


def test_the_log_has_no_import_error_from_the_pack(live_server, object_info):
    log = live_server.log()
    assert re.search(r"^\s*[\d.]+ seconds: .*custom_nodes/snr_toolkit\s*$", log, re.M), "pack not in import times"
    assert "snr_toolkit (IMPORT FAILED)" not in log
    # A traceback: its header, indented frames, then the exception line.
    pattern = re.compile(r"Traceback \(most recent call last\):\n(?:[ \t].*\n)+.*")
    sample = 'Traceback (most recent call last):\n  File "/x/custom_nodes/snr_toolkit/nodes/a.py"\nImportError: y\n'
    assert pattern.findall(sample) == [sample.rstrip("\n")], "the traceback pattern must catch a pack error"
    tracebacks = [block for block in pattern.findall(log) if "snr_toolkit" in block]
    assert not tracebacks, tracebacks[0][:2000]


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
