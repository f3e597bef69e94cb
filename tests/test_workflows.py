"""The bundled workflows against the real ComfyUI server: they validate, are listed as templates, and
convert to API prompts the server accepts. A broken copy fails with a message naming node and input."""
import copy
import json
import urllib.error
from pathlib import Path

import pytest

from tools import build_workflows
from tools import workflow_tools

WORKFLOWS = sorted((Path(__file__).resolve().parent.parent / "workflows").glob("*.json"))


@pytest.fixture(scope="module")
def object_info(live_server, public_model_files):
    return live_server.get_json("/object_info")


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_every_workflow_source_is_bundled():
    assert {p.stem for p in WORKFLOWS} == set(build_workflows.all_names())


def for_this_host(object_info, path: Path) -> bool:
    """False for the training workflow of the other Train LoRA layout, after checking this host refuses it (so the
    split between the two files is real)."""
    if path.stem in build_workflows.for_host(object_info):
        return True
    problems = workflow_tools.validate(load(path), object_info)
    assert any("TrainLoraNode" in p for p in problems), f"{path.stem} was meant for the other Train LoRA: {problems}"
    return False


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_bundled_workflow_validates_against_the_server(object_info, path):
    workflow = load(path)
    if not for_this_host(object_info, path):
        return
    assert workflow_tools.validate(workflow, object_info) == []
    assert any(n["type"] == "MarkdownNote" and "##" in n["widgets_values"][0] for n in workflow["nodes"]), \
        "every workflow explains itself in a note"
    assert any(n["type"].startswith("SNRT") for n in workflow["nodes"])


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_bundled_workflow_is_what_the_builder_makes(object_info, path):
    if not for_this_host(object_info, path):
        return
    built = build_workflows.build_all(object_info)[path.stem]
    assert build_workflows.render(built) == path.read_text(), "run `python3 -m tools workflows`"


def test_the_build_ignores_what_comfyui_releases_add_or_change(object_info):
    """What releases add (0.33: `advanced` flags, new outputs on SaveImage/PreviewImage) or change
    (defaults, categories, descriptions) must not reach the bundled files."""
    changed = copy.deepcopy(object_info)
    for info in changed.values():
        info["category"], info["description"], info["search_aliases"] = "moved", "reworded", ["new"]
        for spec in list(info["input"].get("required", {}).values()) + list(info["input"].get("optional", {}).values()):
            if len(spec) > 1 and isinstance(spec[1], dict):
                spec[1]["advanced"] = True
                if "default" in spec[1] and isinstance(spec[1]["default"], (int, float)):
                    spec[1]["default"] += 1
        if info.get("output_node") and not info["output"]:
            info["output"], info["output_name"], info["output_is_list"] = ["IMAGE"], ["images"], [False]
    assert build_workflows.build_all(changed) == build_workflows.build_all(object_info)


def test_the_builder_names_a_widget_the_workflow_leaves_unset(object_info):
    nodes = build_workflows.WORKFLOWS["sdxl_vpred_ztsnr_ksampler"]()
    del next(n for n in nodes if n["type"] == "KSampler")["widgets"]["denoise"]
    with pytest.raises(ValueError, match=r"node 7 \(KSampler\): widget 'denoise' has no value"):
        workflow_tools.build(nodes, object_info)
    nodes = build_workflows.WORKFLOWS["sdxl_vpred_ztsnr_ksampler"]()
    next(n for n in nodes if n["type"] == "KSampler")["widgets"]["denoize"] = 1.0
    with pytest.raises(ValueError, match=r"node 7 \(KSampler\): no widget input named \['denoize'\]"):
        workflow_tools.build(nodes, object_info)


def test_templates_endpoint_lists_the_workflows_under_the_pack(live_server):
    templates = live_server.get_json("/workflow_templates")
    assert sorted(templates["snr_toolkit"]) == sorted(p.stem for p in WORKFLOWS)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_api_conversion_passes_the_servers_own_validation(live_server, object_info, path):
    if not for_this_host(object_info, path):
        return
    prompt = workflow_tools.to_api(load(path), object_info)
    assert all(node["class_type"] != "MarkdownNote" for node in prompt.values())
    try:
        answer = live_server.post_json("/prompt", {"prompt": prompt})
    except urllib.error.HTTPError as error:
        pytest.fail(f"the server rejected the converted prompt: {error.read().decode()[:3000]}")
    assert answer["node_errors"] == {}
    # The placeholder checkpoints are empty, so execution stops at a loader: validation was the point.
    entry = live_server.run_prompt_result(answer["prompt_id"])
    errors = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
    assert errors and errors[0]["node_type"] in ("CheckpointLoaderSimple", "TripleCLIPLoader", "SNRTCheckpointLoader"), \
        errors


def broken(kind: str) -> dict:
    workflow = copy.deepcopy(load(next(p for p in WORKFLOWS if p.stem == "sdxl_vpred_ztsnr_ksampler")))
    nodes = {n["type"]: n for n in workflow["nodes"]}
    if kind == "unknown node type":
        nodes["SNRTRescaleCFG"]["type"] = "SNRTRescaleCFGv9"
    elif kind == "out-of-range widget":
        nodes["KSampler"]["widgets_values"][2] = 0  # steps (after seed and its control value)
    elif kind == "wrong link type":
        link_id = next(i["link"] for i in nodes["VAEDecode"]["inputs"] if i["name"] == "vae")
        link = next(l for l in workflow["links"] if l[0] == link_id)
        link[2], link[5] = 1, "CLIP"  # the loader's CLIP output into VAEDecode's vae input
    return workflow


@pytest.mark.parametrize("kind,expected", [
    ("unknown node type", "node 3 (SNRTRescaleCFGv9): unknown node type 'SNRTRescaleCFGv9'"),
    ("out-of-range widget", "node 7 (KSampler), input 'steps': 0 is below the minimum 1"),
    ("wrong link type", "node 8 (VAEDecode), input 'vae': link"),
])
def test_a_broken_copy_fails_naming_the_node_and_the_input(object_info, kind, expected):
    problems = workflow_tools.validate(broken(kind), object_info)
    assert problems, f"a workflow with a {kind} validated"
    assert any(expected in problem for problem in problems), problems
    if kind == "wrong link type":
        assert any("brings CLIP" in p and "takes VAE" in p for p in problems), problems
