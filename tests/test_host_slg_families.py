"""Skip Layer Guidance on every DiT family, against ComfyUI's own SkipLayerGuidanceDiT (original mode) and
SkipLayerGuidanceDiTSimple (uncond mode) on tiny random-weight instances of the real model classes, through
ComfyUI's own sampler; and the fast path equal to the plain pass wherever ComfyUI's loop was verified."""
import logging
import re

import pytest
import torch

#: tools.tiny_dits family → (the door's family name, custom double layers, custom single layers). The layers
#: sit mid-model; Chroma skips single blocks only, so the branch resumes inside the single-block loop.
CASES = {
    "flux": ("Flux", "2, 3", "5"),
    "wan": ("Wan", "9", ""),
    "sd35_large": ("SD3", "7, 8, 9", ""),
    "hunyuan_video": ("HunyuanVideo", "3", "2"),
    "ltxv": ("LTX-Video", "5, 6", ""),
    "qwen_image": ("Qwen-Image", "9", ""),
    "aura_flow": ("AuraFlow", "1", "3"),
    "chroma": ("Chroma", "", "4, 6"),
    "mochi": ("Mochi", "10", ""),
    "hunyuan_dit": ("HunyuanDiT", "0, 39", ""),  # its tiny middle blocks barely move the output
}
FAMILY_NAMES = list(CASES)
SCALE, CFG, STEPS = 3.0, 2.0, 2


@pytest.fixture(scope="module")
def tiny_dits(comfy_host):
    import comfy.samplers  # noqa: F401
    from tools import tiny_dits
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # toy-width matmuls gain nothing from threads on a shared CPU
    yield tiny_dits
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def door(comfy_host):
    return comfy_host.pack_module("internals.dit")


def sample(model, tiny, family, steps=STEPS):
    import comfy.sample
    _, conditioning, make_latent = tiny.FAMILIES[family]
    latent = make_latent(0)
    noise = comfy.sample.prepare_noise(latent, 0)
    return comfy.sample.sample(model, noise, steps, CFG, "euler", "simple", conditioning(seed=1),
                               conditioning(seed=3), latent, disable_pbar=True, seed=0)


def ours(host, model, family, mode="original", fast_path=True):
    _, double, single = CASES[family]
    return host.node("SNRTSkipLayerGuidance").execute(model, "custom", double, SCALE, 0.0, 1.0, "sigma percent",
                                                      fast_path, single, mode)[0]


def comfyuis(host, model, family, simple=False):
    _, double, single = CASES[family]
    if simple:
        return host.node("SkipLayerGuidanceDiTSimple").execute(model, 0.0, 1.0, double, single)[0]
    return host.node("SkipLayerGuidanceDiT").execute(model, SCALE, 0.0, 1.0, double, single, 0.0)[0]


def close(a, b):
    """Equal to float tolerance, relative to the sample's scale (batch 2 against batch 1 changes the last bits)."""
    return bool((a - b).abs().max() <= 1e-5 * b.abs().max())


def test_every_family_has_a_case(door, tiny_dits):
    assert set(CASES) == set(tiny_dits.FAMILIES)
    assert {name for name, _, _ in CASES.values()} == {family.name for family in door.FAMILIES}


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_the_family_is_detected_with_its_block_counts(comfy_host, tiny_dits, door, family):
    model = tiny_dits.FAMILIES[family][0]()
    detected = door.dit_family(model, "test")
    assert detected.name == CASES[family][0]
    counts = door.block_counts(model, detected)
    diffusion_model = model.model.diffusion_model
    assert counts["double_block"] == len(getattr(diffusion_model, detected.double))
    assert counts["single_block"] == (len(getattr(diffusion_model, detected.single)) if detected.single else 0)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_original_mode_equals_comfyuis_node(comfy_host, tiny_dits, family, caplog):
    model = tiny_dits.FAMILIES[family][0]()
    theirs = sample(comfyuis(comfy_host, model, family), tiny_dits, family)
    plain_cfg = sample(model, tiny_dits, family)
    assert not close(theirs, plain_cfg), "the skipped layers must matter, or the comparison proves nothing"
    with caplog.at_level(logging.INFO, logger="snr_toolkit"):
        fast = sample(ours(comfy_host, model, family), tiny_dits, family)
    plain = sample(ours(comfy_host, model, family, fast_path=False), tiny_dits, family)
    assert close(plain, theirs)
    assert close(fast, theirs)
    forked = "fast path, forked at block" in caplog.text
    assert forked == (family != "hunyuan_dit"), caplog.text  # HunyuanDiT's long skips rule the fork out


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_uncond_mode_equals_comfyuis_simple_node(comfy_host, tiny_dits, family):
    model = tiny_dits.FAMILIES[family][0]()
    theirs = sample(comfyuis(comfy_host, model, family, simple=True), tiny_dits, family)
    assert not close(theirs, sample(model, tiny_dits, family)), "the skipped layers must matter"
    assert close(sample(ours(comfy_host, model, family, mode="uncond"), tiny_dits, family), theirs)


def test_every_forkable_familys_loop_is_verified_on_this_comfyui(comfy_host, door):
    for family in door.FAMILIES:
        found = door.fork_problems(family.model_class(), family)
        assert bool(found) == bool(family.unforkable), (family.name, found)


def test_the_comfyui_preset_is_comfyuis_node_at_its_defaults(comfy_host, tiny_dits):
    model = tiny_dits.FAMILIES["flux"][0]()
    node = comfy_host.node("SkipLayerGuidanceDiT")
    theirs = sample(node.execute(model, 3.0, 0.01, 0.15, "7, 8, 9", "7, 8, 9", 0.0)[0], tiny_dits, "flux", steps=12)
    assert not close(theirs, sample(model, tiny_dits, "flux", steps=12)), "some of the 12 steps must be inside"
    preset = comfy_host.node("SNRTSkipLayerGuidance").execute(model, "ComfyUI", "", 0.0, 0.0, 0.0, "sigma percent")[0]
    assert close(sample(preset, tiny_dits, "flux", steps=12), theirs)


@pytest.mark.parametrize("family", ["wan", "flux", "aura_flow"])
def test_custom_layers_out_of_range_name_the_valid_range(comfy_host, tiny_dits, family):
    model = tiny_dits.FAMILIES[family][0]()
    error = comfy_host.pack_module("errors").SNRToolkitError
    counts = {"wan": "30 blocks (0 … 29)", "flux": "19 double blocks (0 … 18)", "aura_flow": "4 double blocks (0 … 3)"}
    with pytest.raises(error, match=re.escape(f"layer 40 is out of range: this model has {counts[family]}")):
        comfy_host.node("SNRTSkipLayerGuidance").execute(model, "custom", "40", 3.0, 0.0, 1.0, "sigma percent")


def test_recommended_picks_the_familys_published_preset(comfy_host, tiny_dits, caplog):
    node = comfy_host.node("SNRTSkipLayerGuidance")
    with caplog.at_level(logging.INFO, logger="snr_toolkit"):
        node.execute(tiny_dits.FAMILIES["wan"][0](), "recommended for this model", "", 0.0, 0.0, 0.0, "step fraction")
        node.execute(tiny_dits.FAMILIES["sd35_large"][0](), "recommended for this model", "", 0.0, 0.0, 0.0,
                     "step fraction")
    assert "Wan model, preset Wan2GP (block 9, uncond), mode uncond, double [9]" in caplog.text
    assert "no preset is published for this SD3 model (38 blocks)" in caplog.text


def test_a_preset_for_another_family_is_refused_and_another_size_warned(comfy_host, tiny_dits, caplog):
    node = comfy_host.node("SNRTSkipLayerGuidance")
    error = comfy_host.pack_module("errors").SNRToolkitError
    with pytest.raises(error, match=r"preset 'SAI reference' was published for .*SD 3.5 Medium.*not for this Wan "
                                    r"model.*Presets for this model: Wan2GP \(block 9, uncond\), KJNodes"):
        node.execute(tiny_dits.FAMILIES["wan"][0](), "SAI reference", "7, 8, 9", 2.5, 0.01, 0.2, "step fraction")
    with caplog.at_level(logging.WARNING, logger="snr_toolkit"):  # saved SD3.5 Large workflows keep working
        node.execute(tiny_dits.FAMILIES["sd35_large"][0](), "SAI reference", "7, 8, 9", 2.5, 0.01, 0.2, "step fraction")
    assert "this SD3 model has 38 blocks, where nothing was published" in caplog.text
