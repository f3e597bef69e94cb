"""Skip Layer Guidance on every DiT family, against ComfyUI's own SkipLayerGuidanceDiT (original mode) and
SkipLayerGuidanceDiTSimple (uncond mode) on tiny random-weight instances of the real model classes, through
ComfyUI's own sampler; and the fast path equal to the plain pass wherever ComfyUI's loop was verified."""
import logging
import re

import pytest
import torch

#: tools.tiny_dits family → (custom double layers, custom single layers). The layers sit mid-model; Chroma
#: skips single blocks only, so the branch resumes inside the single-block loop.
CASES = {
    "flux": ("2, 3", "5"),
    "wan": ("9", ""),
    "sd35_large": ("7, 8, 9", ""),
    "hunyuan_video": ("3", "2"),
    "ltxv": ("5, 6", ""),
    "qwen_image": ("9", ""),
    "aura_flow": ("1", "3"),
    "chroma": ("", "4, 6"),
    "mochi": ("10", ""),
    "hunyuan_dit": ("0, 39", ""),  # its tiny middle blocks barely move the output
    "stable_audio": ("12", ""),
    "stable_audio3": ("12", ""),
    "hunyuan3d": ("8", "16"),
    "kandinsky5": ("15, 16", ""),
    "joyimage": ("19, 20", ""),
    "lens": ("23, 24", ""),
    "mage_flow": ("5, 6", ""),
    "hidream_o1": ("17, 18", ""),
    "minimax_h3": ("24, 25", ""),
    "ltxav": ("5, 6", ""),
}
FAMILY_NAMES = list(CASES)
#: Models of a forkable family whose own blocks rule the fork out (internals.dit.model_fork_problems).
NO_FORK = {"stable_audio3": "its blocks take a local conditioning"}
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
    """The sample, flat (MiniMax H3's is a NestedTensor of video and audio)."""
    import comfy.sample
    _, conditioning, make_latent = tiny.FAMILIES[family]
    latent = make_latent(0)
    noise = comfy.sample.prepare_noise(latent, 0)
    out = comfy.sample.sample(model, noise, steps, CFG, "euler", "simple", conditioning(seed=1),
                              conditioning(seed=3), latent, disable_pbar=True, seed=0)
    return torch.cat([t.flatten() for t in out.unbind()]) if getattr(out, "is_nested", False) else out


def ours(host, model, family, mode="original", fast_path=True):
    double, single = CASES[family]
    return host.node("SNRTSkipLayerGuidance").execute(model, "custom", double, SCALE, 0.0, 1.0, "sigma percent",
                                                      fast_path, single, mode)[0]


def comfyuis(host, model, family, simple=False):
    double, single = CASES[family]
    if simple:
        return host.node("SkipLayerGuidanceDiTSimple").execute(model, 0.0, 1.0, double, single)[0]
    return host.node("SkipLayerGuidanceDiT").execute(model, SCALE, 0.0, 1.0, double, single, 0.0)[0]


def close(a, b):
    """Equal to float tolerance, relative to the sample's scale (batch 2 against batch 1 changes the last bits)."""
    return bool((a - b).abs().max() <= 1e-5 * b.abs().max())


def test_every_family_has_a_case(door, tiny_dits):
    assert set(CASES) == set(tiny_dits.FAMILIES)
    assert set(tiny_dits.DOOR_FAMILY.values()) == {family.name for family in door.FAMILIES}


def door_family(door, tiny_dits, family):
    return next(f for f in door.FAMILIES if f.name == tiny_dits.DOOR_FAMILY[family])


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_the_family_is_detected_with_its_block_counts(comfy_host, tiny_dits, require_tiny_dit, door, family):
    require_tiny_dit(family)
    model = tiny_dits.FAMILIES[family][0]()
    detected = door.dit_family(model, "test")
    assert detected.name == tiny_dits.DOOR_FAMILY[family]
    counts = door.block_counts(model, detected)
    diffusion_model = model.model.diffusion_model
    assert counts["double_block"] == len(door.attribute_path(diffusion_model, detected.double)) > 0
    assert counts["single_block"] == (len(door.attribute_path(diffusion_model, detected.single))
                                      if detected.single else 0)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_original_mode_equals_comfyuis_node(comfy_host, tiny_dits, require_tiny_dit, door, family, caplog):
    require_tiny_dit(family)
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
    assert forked == (door_family(door, tiny_dits, family).unforkable is None and family not in NO_FORK), caplog.text


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_uncond_mode_equals_comfyuis_simple_node(comfy_host, tiny_dits, require_tiny_dit, family):
    require_tiny_dit(family)
    model = tiny_dits.FAMILIES[family][0]()
    theirs = sample(comfyuis(comfy_host, model, family, simple=True), tiny_dits, family)
    assert not close(theirs, sample(model, tiny_dits, family)), "the skipped layers must matter"
    assert close(sample(ours(comfy_host, model, family, mode="uncond"), tiny_dits, family), theirs)


def test_every_forkable_familys_loop_is_verified_on_this_comfyui(comfy_host, door):
    checked = 0
    for family in door.FAMILIES:
        if family.loop_class() is None:
            assert not family.expected_here(), f"{family.name}'s loop class is gone from this ComfyUI"
            continue
        found = door.fork_problems(family.loop_class(), family)
        assert bool(found) == bool(family.unforkable), (family.name, found)
        checked += 1
    assert checked == sum(family.expected_here() for family in door.FAMILIES)


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


def test_the_ar_video_sampler_gets_a_clear_error_not_a_pass_that_skips_nothing(comfy_host, tiny_dits, door):
    """ComfyUI 0.33's ar_video sampler runs Causal Wan's blocks through a KV-cached loop that reads no patches:
    ComfyUI's node then skips nothing and overfills the cache (a RuntimeError about tensor sizes); ours says why."""
    import comfy.sample
    import comfy.samplers
    import comfy.supported_models
    if door.version_tuple(comfy_host.pack_module("internals").comfyui_version()) < (0, 33, 0):
        assert not hasattr(comfy.supported_models, "WAN21_CausalAR_T2V")
        pytest.skip("Causal Wan and the ar_video sampler are new in ComfyUI 0.33.0; this host is older")
    model = tiny_dits.recent.tiny_causal_wan()
    latent = torch.randn(1, 16, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "simple", STEPS)

    def ar_video(patched):  # cfg 1, as Causal-Forcing checkpoints run (the cache holds one row)
        positive, negative = tiny_dits.conditioning_wan(seed=1), tiny_dits.conditioning_wan(seed=3)
        return comfy.sample.sample_custom(patched, comfy.sample.prepare_noise(latent, 0), 1.0,
                                          tiny_dits.recent.ar_video_sampler(), sigmas, positive, negative, latent,
                                          disable_pbar=True, seed=0)
    ar_video(model)  # plain ar_video works
    with pytest.raises(RuntimeError, match="expanded size of the tensor"):
        ar_video(comfyuis(comfy_host, model, "wan"))
    error = comfy_host.pack_module("errors").SNRToolkitError
    for fast_path in (True, False):
        with pytest.raises(error, match="ar_video sampler runs Causal Wan's blocks .* takes no layer-skip patches"):
            ar_video(ours(comfy_host, model, "wan", fast_path=fast_path))


def test_uncond_mode_at_cfg_1_says_it_changes_nothing(comfy_host, tiny_dits, caplog):
    """At cfg 1 ComfyUI runs no uncond pass, so there is nothing for mode uncond to skip layers in."""
    import comfy.sample
    model = tiny_dits.tiny_wan()
    latent = tiny_dits.latent_wan(0)
    with caplog.at_level(logging.WARNING, logger="snr_toolkit"):
        out = comfy.sample.sample(ours(comfy_host, model, "wan", mode="uncond"), comfy.sample.prepare_noise(latent, 0),
                                  STEPS, 1.0, "euler", "simple", tiny_dits.conditioning_wan(seed=1),
                                  tiny_dits.conditioning_wan(seed=3), latent, disable_pbar=True, seed=0)
    plain = comfy.sample.sample(model, comfy.sample.prepare_noise(latent, 0), STEPS, 1.0, "euler", "simple",
                                tiny_dits.conditioning_wan(seed=1), tiny_dits.conditioning_wan(seed=3), latent,
                                disable_pbar=True, seed=0)
    assert torch.equal(out, plain)
    assert caplog.text.count("mode uncond changes nothing here") == 1, caplog.text


def test_the_ar_video_check_is_named_when_comfyui_changes_it(comfy_host, door, monkeypatch):
    """patches_bypassed reads ar_video's transformer_options key; a release that renames it is named at load."""
    assert door.bypass_problems() == []
    try:
        import comfy.ldm.wan.ar_model as ar_model
    except ImportError:
        assert door.version_tuple(comfy_host.pack_module("internals").comfyui_version()) < (0, 33, 0)
        pytest.skip("Causal Wan is new in ComfyUI 0.33.0; this host is older")
    monkeypatch.setattr(ar_model.CausalWanModel, "forward", lambda self, x, *args, **kwargs: x)
    assert any("CausalWanModel.forward no longer reads" in problem for problem in door.contract_problems())


def test_stable_audio_3_needs_the_guard_that_turns_its_fork_off(comfy_host, tiny_dits, require_tiny_dit, monkeypatch):
    """ComfyUI gives Stable Audio 3's local conditioning only to unpatched blocks, so the fork's kept block would
    run without it: forced past the guard, the fork changes the sample; with it, ours equals ComfyUI's node."""
    require_tiny_dit("stable_audio3")
    model = tiny_dits.FAMILIES["stable_audio3"][0]()
    theirs = sample(comfyuis(comfy_host, model, "stable_audio3"), tiny_dits, "stable_audio3")
    assert close(sample(ours(comfy_host, model, "stable_audio3"), tiny_dits, "stable_audio3"), theirs)
    monkeypatch.setattr(comfy_host.pack_module("nodes.skip_layer_guidance"), "model_fork_problems", lambda *a: [])
    forced = sample(ours(comfy_host, model, "stable_audio3"), tiny_dits, "stable_audio3")
    assert not close(forced, theirs), "the local conditioning must matter to the fork"
