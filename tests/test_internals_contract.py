"""Contract tests for the doors to ComfyUI's internals (internals/): every assumption holds on the running
ComfyUI, each check fails with a message naming the assumption when ComfyUI changes under it, and the nodes
react as promised: the SLG fork falls back to the plain pass (same image), the others stop with a clear error."""
import logging
import pathlib

import pytest
import torch

DOORS = ("mmdit", "model_sampling", "scheduler_registry", "ksampler", "cfg", "supported_models", "noise",
         "model_management")


@pytest.fixture()
def internals(comfy_host):
    """The pack's internals package as ComfyUI loaded it, with its per-process cache cleared around each test."""
    import comfy.samplers  # noqa: F401  (ComfyUI is importable once the host is up)
    module = comfy_host.pack_module("internals")
    module._problems_cached.cache_clear()
    yield module
    module._problems_cached.cache_clear()


def test_the_test_covers_every_door(internals):
    assert set(internals.DOORS) == set(DOORS)


@pytest.mark.parametrize("name", DOORS)
def test_every_assumption_holds_on_this_comfyui(internals, name):
    door = internals.door(name)
    assert "Assumption" in (door.__doc__ or ""), f"internals/{name}.py must state its assumptions"
    assert door.contract_problems() == [], f"ComfyUI changed under internals/{name}.py"


def altered_loop():
    """MMDiT's own block loop as a release might change it: the same code (replace patches and all) with its
    output tokens scaled, so a fork that copies the old loop would no longer equal the plain pass."""
    import inspect
    import textwrap

    import comfy.ldm.modules.diffusionmodules.mmdit as mmdit
    source = textwrap.dedent(inspect.getsource(mmdit.MMDiT.forward_core_with_concat))
    final = "x = self.final_layer(x, c_mod)"
    assert source.count(final) == 1, "the test's edit no longer applies to this ComfyUI's MMDiT loop"
    import tempfile
    path = pathlib.Path(tempfile.mkdtemp()) / "altered_mmdit_loop.py"
    path.write_text(source.replace(final, final + " * 1.01"))  # a file, so inspect can read it as for a release
    namespace = {}
    exec(compile(path.read_text(), str(path), "exec"), vars(mmdit), namespace)
    return namespace["forward_core_with_concat"]


def break_door(name, monkeypatch):
    """Change ComfyUI the way a release could, under one door; returns the words its problem must name."""
    import comfy.ldm.modules.diffusionmodules.mmdit as mmdit
    import comfy.model_sampling
    import comfy.sample
    import comfy.samplers
    import comfy.supported_models
    if name == "mmdit":
        monkeypatch.setattr(mmdit.MMDiT, "forward_core_with_concat", altered_loop())
        return "block loop"
    if name == "model_sampling":
        monkeypatch.setattr(comfy.model_sampling.ModelSamplingDiscrete, "sigma_max", 14.6)
        return "sigma_max is no longer a property"
    if name == "scheduler_registry":
        monkeypatch.setattr(comfy.samplers.KSampler, "SCHEDULERS", list(comfy.samplers.SCHEDULER_NAMES))
        return "same list object"
    if name == "ksampler":
        monkeypatch.setattr(comfy.samplers.KSAMPLER, "sample", lambda self, *args, **kwargs: None)
        return "no longer calls self.sampler_function"
    if name == "cfg":
        monkeypatch.setattr(comfy.samplers, "calc_cond_batch", lambda model, conds, x, sigma, options: None)
        return "calc_cond_batch's parameters"
    if name == "supported_models":
        monkeypatch.delattr(comfy.supported_models, "SD20")
        return "SD20 is gone"
    if name == "model_management":
        import comfy.model_management
        monkeypatch.setattr(comfy.model_management, "intermediate_device", lambda: "cpu")
        return "no longer returns a torch.device"
    if name == "noise":
        monkeypatch.setattr(comfy.sample, "prepare_noise", lambda latent, generator: None)
        return "prepare_noise's parameters"
    raise AssertionError(name)


@pytest.mark.parametrize("name", DOORS)
def test_a_changed_internal_is_named(internals, name, monkeypatch):
    words = break_door(name, monkeypatch)
    found = internals.door(name).contract_problems()
    assert found and any(words in problem for problem in found), found


def test_a_node_without_a_plain_path_stops_naming_the_change(internals, comfy_host, monkeypatch):
    break_door("ksampler", monkeypatch)
    error = comfy_host.pack_module("errors").SNRToolkitError
    sampler = comfy_host.node("KSamplerSelect").execute("euler_ancestral")[0]
    with pytest.raises(error, match=r"changed an internal.*KSAMPLER\.sample no longer calls self\.sampler_function"):
        comfy_host.node("SNRTPyramidNoiseSampler").execute(sampler, 6, 0.3, 0.0)


def test_v_prediction_stops_when_model_sampling_changed(internals, comfy_host, monkeypatch):
    from tools import tiny_models
    model = tiny_models.tiny_sdxl(v_pred=True, ztsnr=True)
    break_door("model_sampling", monkeypatch)
    error = comfy_host.pack_module("errors").SNRToolkitError
    with pytest.raises(error, match="sigma_max is no longer a property"):
        comfy_host.node("SNRTVPrediction").execute(model, "auto", "auto", "NovelAI (20000)", False)


def test_scheduler_registration_refuses_a_rebound_list_and_says_so(internals, comfy_host, monkeypatch, caplog):
    break_door("scheduler_registry", monkeypatch)
    register = comfy_host.pack_module("nodes.scheduler").register_ksampler_schedulers
    with caplog.at_level(logging.ERROR, logger="snr_toolkit"):
        assert register() is False
    assert "same list object" in caplog.text and "ZTSNR Scheduler node still works" in caplog.text


def sample_sd35(comfy_host, model, steps=6):
    """A short SamplerCustomAdvanced run of the tiny SD3.5 model, as in tests/test_host_guidance.py."""
    generator = torch.Generator().manual_seed(5)
    positive = [[torch.randn(1, 16, 4096, generator=generator) * 0.1,
                 {"pooled_output": torch.randn(1, 2048, generator=generator) * 0.1}]]
    negative = [[torch.randn(1, 16, 4096, generator=generator) * 0.1,
                 {"pooled_output": torch.randn(1, 2048, generator=generator) * 0.1}]]
    node = comfy_host.node
    sigmas = node("BasicScheduler").execute(model, "simple", steps, 1.0)[0]
    guider = node("CFGGuider").execute(model, positive, negative, 4.0)[0]
    out = node("SamplerCustomAdvanced").execute(node("RandomNoise").execute(3)[0], guider,
                                                node("KSamplerSelect").execute("euler")[0], sigmas,
                                                {"samples": torch.zeros(1, 16, 16, 16)})[0]["samples"]
    return out


def slg(comfy_host, model, fast_path):
    # custom window 0–1 (step fraction): every step but the first is guided, so the fork would run.
    return comfy_host.node("SNRTSkipLayerGuidance").execute(model, "custom", "7, 8, 9", 2.5, 0.0, 1.0,
                                                            "step fraction", fast_path)[0]


def test_slg_fork_falls_back_to_the_plain_pass_when_mmdits_loop_changed(internals, comfy_host, monkeypatch, caplog):
    from tools import tiny_models
    model = tiny_models.tiny_sd3_medium(num_blocks=24)
    assert comfy_host.pack_module("internals.mmdit").fork_problems(type(model.model.diffusion_model),
                                                               type(model.model)) == []
    break_door("mmdit", monkeypatch)
    with caplog.at_level(logging.INFO, logger="snr_toolkit"):
        fast = sample_sd35(comfy_host, slg(comfy_host, model, fast_path=True))
    assert "fast path off, the plain extra pass runs instead (same output, slower)" in caplog.text
    assert "block loop or output mapping" in caplog.text
    assert "forked at block" not in caplog.text
    plain = sample_sd35(comfy_host, slg(comfy_host, model, fast_path=False))
    assert torch.equal(fast, plain)
    # Why the guard matters: forced past it, the fork copies the old loop and gives a different image.
    monkeypatch.setattr(comfy_host.pack_module("nodes.skip_layer_guidance"), "fork_problems", lambda *classes: [])
    forced = sample_sd35(comfy_host, slg(comfy_host, model, fast_path=True))
    assert not torch.allclose(forced, plain, atol=1e-4), "the altered loop must matter to the fork"


def test_loading_the_pack_warns_once_per_changed_internal(internals, monkeypatch, caplog):
    assert internals.warn_on_load() == []
    internals._problems_cached.cache_clear()
    break_door("cfg", monkeypatch)
    with caplog.at_level(logging.WARNING, logger="snr_toolkit"):
        assert internals.warn_on_load() == ["cfg"]
    assert "changed what internals/cfg.py relies on: calc_cond_batch's parameters" in caplog.text


def test_the_fork_also_checks_the_output_mapping_it_repeats(internals, comfy_host, monkeypatch):
    import comfy.ldm.modules.diffusionmodules.mmdit as mmdit
    import comfy.model_base
    door = comfy_host.pack_module("internals.mmdit")
    original = comfy.model_base.SD3._apply_model

    def _apply_model(self, *args, **kwargs):  # a release that post-processes the prediction differently
        return original(self, *args, **kwargs)
    monkeypatch.setattr(comfy.model_base.SD3, "_apply_model", _apply_model)
    found = door.fork_problems(mmdit.OpenAISignatureMMDITWrapper, comfy.model_base.SD3)
    assert len(found) == 1 and "SD3._apply_model no longer ends in" in found[0], found
