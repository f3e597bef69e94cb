"""Prompts with different pack settings queued back to back on a live ComfyUI server give exactly the
latents each gives alone: no state (SLG's fork and gate, σ_max object patches, noise objects) leaks
from one prompt into the next, whether the pack's node runs afresh or comes from ComfyUI's cache."""
import itertools
import time
import urllib.error

import pytest
import torch

from safetensors.torch import load_file

# Each run's empty latent is 8×8 (64 px) from ComfyUI's own empty-latent node, spelled with a different
# width/height in 64…71 per run (the node floors to ×8): the same zero latent under a new cache key, so
# ComfyUI's cache cannot hand back an earlier run's sampler output and every run really samples
# (checked from /history, see `executed`).
SPELLINGS = itertools.count()


def empty_latent(node: str) -> dict:
    k = next(SPELLINGS)
    assert k < 64, "only 64 spellings of a 64×64 canvas"
    return {"class_type": node, "inputs": {"width": 64 + k % 8, "height": 64 + k // 8, "batch_size": 1}}


def conditioning(family: str, seed: int) -> dict:
    return {"class_type": "SNRTTestTinyConditioning", "inputs": {"family": family, "seed": seed}}


def ksampler(model_node: str, scheduler: str) -> dict:
    return {"class_type": "KSampler", "inputs": {
        "model": [model_node, 0], "seed": 3, "steps": 3, "cfg": 4.0, "sampler_name": "euler", "scheduler": scheduler,
        "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0], "denoise": 1.0}}


def save_latent(prefix: str) -> dict:
    """ComfyUI's SaveLatent: the exact latent as a safetensors file (an image would round to 8 bits)."""
    return {"class_type": "SaveLatent", "inputs": {"samples": ["sampler", 0], "filename_prefix": prefix}}


# Each builder: (setting, respelled) -> a prompt holding the pack nodes of BOTH settings ("pack_A",
# "pack_B"), the sampler wired to its setting's, the other idle: the workflow a user rewires between
# two nodes, which the frontend sends whole. ComfyUI does not run the idle node, but its cache keeps
# every node a prompt holds, so the next prompt of the other setting takes its pack node's output from
# the cache although the other setting's node ran in between (a patched model, SLG fork and gate
# carried across prompts). `respelled` writes the same settings differently ("9,8,7" for "7, 8, 9"):
# new cache keys, so the pack nodes run afresh.

SLG = {"A": ("7, 8, 9", "9,8,7", "step fraction"), "B": ("3, 12", "12,3", "sigma percent")}


def slg_node(setting: str, respelled: bool) -> dict:
    layers, other_spelling, gating = SLG[setting]
    # Windows 0–1: sigma percent covers every step; step fraction every step after the first (the
    # SAI gate's bounds are exclusive).
    return {"class_type": "SNRTSkipLayerGuidance", "inputs": {
        "model": ["model", 0], "preset": "custom", "layers": other_spelling if respelled else layers,
        "scale": 2.5, "start": 0.0, "end": 1.0, "gating": gating}}


def slg_prompt(setting: str, respelled: bool) -> dict:
    return {
        "model": {"class_type": "SNRTTestTinyModel", "inputs": {"kind": "sd3.5 medium (24 blocks)"}},
        "pack_A": slg_node("A", respelled), "pack_B": slg_node("B", respelled),
        "pos": conditioning("sd3", 1), "neg": conditioning("sd3", 2), "latent": empty_latent("EmptySD3LatentImage"),
        "sampler": ksampler(f"pack_{setting}", "simple"),
        "save": save_latent("snrt_conc_slg"),
    }


# (width, height, base_side): the respelling swaps the sides and names SDXL's base side (0 = by family,
# 1024 for SDXL), the same √(w·h) / base factor.
SIGMA_MAX = {"A": ((2048, 2048, 0), (2048, 2048, 1024)), "B": ((1024, 1536, 0), (1536, 1024, 1024))}


def sigma_max_node(setting: str, respelled: bool) -> dict:
    width, height, base_side = SIGMA_MAX[setting][respelled]
    return {"class_type": "SNRTSigmaMaxScale", "inputs": {"model": ["model", 0], "width": width, "height": height,
                                                          "base_side": base_side}}


def sigma_max_prompt(setting: str, respelled: bool) -> dict:
    return {
        "model": {"class_type": "SNRTTestTinyModel", "inputs": {"kind": "sdxl eps"}},
        "pack_A": sigma_max_node("A", respelled), "pack_B": sigma_max_node("B", respelled),
        "pos": conditioning("sdxl", 1), "neg": conditioning("sdxl", 2), "latent": empty_latent("EmptyLatentImage"),
        "sampler": ksampler(f"pack_{setting}", "karras"),  # core karras starts at the model's σ_max
        "save": save_latent("snrt_conc_smax"),
    }


def noise_prompt(setting: str, respelled: bool) -> dict:
    """A: pyramid initial noise and pyramid ancestral noise; B: ComfyUI's RandomNoise and plain
    euler_ancestral. Same seeds. (These noise nodes have no second spelling: `respelled` is a no-op.)"""
    return {
        "model": {"class_type": "SNRTTestTinyModel", "inputs": {"kind": "sdxl eps"}},
        "pos": conditioning("sdxl", 1), "neg": conditioning("sdxl", 2), "latent": empty_latent("EmptyLatentImage"),
        "guider": {"class_type": "CFGGuider", "inputs": {"model": ["model", 0], "positive": ["pos", 0],
                                                         "negative": ["neg", 0], "cfg": 4.0}},
        "sigmas": {"class_type": "BasicScheduler", "inputs": {"model": ["model", 0], "scheduler": "karras",
                                                              "steps": 3, "denoise": 1.0}},
        "noise_A": {"class_type": "SNRTPyramidNoise", "inputs": {"seed": 5, "iterations": 6, "discount": 0.3,
                                                                 "offset_strength": 0.1}},
        "noise_B": {"class_type": "RandomNoise", "inputs": {"noise_seed": 5}},
        "select_B": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler_ancestral"}},
        "select_A": {"class_type": "SNRTPyramidNoiseSampler", "inputs": {
            "sampler": ["select_B", 0], "iterations": 6, "discount": 0.3, "offset_strength": 0.1}},
        "sampler": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": [f"noise_{setting}", 0], "guider": ["guider", 0], "sampler": [f"select_{setting}", 0],
            "sigmas": ["sigmas", 0], "latent_image": ["latent", 0]}},
        "save": save_latent("snrt_conc_noise"),
    }


CASES = {"slg layers": slg_prompt, "sigma_max scaling": sigma_max_prompt, "pyramid vs plain noise": noise_prompt}


def messages(entry, event: str) -> list[dict]:
    return [data for name, data in entry["status"]["messages"] if name == event]


def executed(entry, node: str) -> bool:
    """The node ran in this prompt rather than coming from ComfyUI's output cache."""
    (cached,) = messages(entry, "execution_cached")
    return node not in cached["nodes"]


def latent_of(live_server, entry) -> torch.Tensor:
    """The latent SaveLatent wrote, from a run that succeeded and really sampled."""
    errors = messages(entry, "execution_error")
    assert entry["status"]["status_str"] == "success" and not errors, errors
    assert executed(entry, "sampler"), "the sampler's output came from the cache: this run compares nothing"
    (saved,) = entry["outputs"]["save"]["latents"]
    return load_file(str(live_server.base / "output" / saved["subfolder"] / saved["filename"]))["latent_tensor"]


def post(live_server, prompt: dict) -> str:
    """Queue a prompt; its id. A refused prompt fails with ComfyUI's validation message."""
    try:
        return live_server.post_json("/prompt", {"prompt": prompt})["prompt_id"]
    except urllib.error.HTTPError as refused:
        pytest.fail(f"ComfyUI refused the prompt: {refused.read().decode()[:2000]}", pytrace=False)


def queue(live_server, prompts: list[dict]) -> list[dict]:
    """POST every prompt without waiting, then collect their /history entries."""
    ids = [post(live_server, p) for p in prompts]
    posted_ms = time.time() * 1000
    entries = [live_server.run_prompt_result(i, timeout_s=300) for i in ids]
    # They were back to back: all were queued before the first finished, and they ran in order.
    for done in messages(entries[0], "execution_success"):  # (a failed run is reported by latent_of)
        assert posted_ms <= done["timestamp"], "the first prompt finished before the others were queued"
    starts = [messages(e, "execution_start")[0]["timestamp"] for e in entries]
    assert starts == sorted(starts)
    return entries


def assert_same(got: torch.Tensor, alone: torch.Tensor, what: str) -> None:
    assert got.shape == alone.shape, what
    assert torch.equal(got, alone), f"{what}: max |Δ| = {float((got - alone).abs().max()):.3g} from the run alone"


@pytest.mark.parametrize("case", list(CASES))
def test_back_to_back_prompts_give_what_each_gives_alone(live_server, case):
    build = CASES[case]
    alone = {setting: latent_of(live_server, live_server.run_prompt_result(post(live_server, build(setting, False))))
             for setting in "AB"}
    assert bool(torch.isfinite(alone["A"]).all() and torch.isfinite(alone["B"]).all())
    # Otherwise a leak from one setting into the other could not show.
    assert not torch.equal(alone["A"], alone["B"]), f"{case}: settings A and B give the same latent"

    # A, B, B, A', B' back to back: a change of setting both ways with pack nodes from the cache (A's
    # was made before B's ran alone), B's reused by the next prompt, then A' and B' respelled so their
    # pack nodes run afresh right after the other setting ran.
    order = [("A", False), ("B", False), ("B", False), ("A", True), ("B", True)]
    prompts = [build(setting, respelled) for setting, respelled in order]
    entries = queue(live_server, prompts)
    for n, ((setting, respelled), prompt, entry) in enumerate(zip(order, prompts, entries)):
        mark = "'" if respelled else ""
        what = f"{case}: queued run {n} ({setting}{mark}) of A, B, B, A', B'"
        if respelled and f"pack_{setting}" in prompt:
            assert executed(entry, f"pack_{setting}"), f"{what}: the respelled pack node came from the cache"
        assert_same(latent_of(live_server, entry), alone[setting], what)
