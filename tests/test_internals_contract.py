"""Contract tests for the doors to ComfyUI's internals (internals/): every assumption holds on the running
ComfyUI, each check fails with a message naming the assumption when ComfyUI changes under it, and the nodes
react as promised: the SLG fork falls back to the plain pass (same image), the others stop with a clear error."""
import importlib.util
import logging
import pathlib
import types

import pytest
import torch

DOORS = ("dit", "model_sampling", "scheduler_registry", "ksampler", "cfg", "supported_models", "noise",
         "model_management", "checkpoint_loading", "trainer")


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
    """MMDiT's own block loop as a release might change it: the same code (replace patches and all) plus a long
    skip connection from block 0's output to the final layer, so the loop carries more than img/txt from block
    to block and a branch that resumes at a later block would no longer equal the plain pass."""
    import inspect
    import tempfile
    import textwrap

    import comfy.ldm.modules.diffusionmodules.mmdit as mmdit
    source = textwrap.dedent(inspect.getsource(mmdit.MMDiT.forward_core_with_concat))
    final, after_block = "x = self.final_layer(x, c_mod)", "\n        if control is not None:\n"
    assert source.count(final) == 1 and source.count(after_block) == 1, \
        "the test's edit no longer applies to this ComfyUI's MMDiT loop"
    source = source.replace(final, "x = self.final_layer(x + 0.5 * first_out, c_mod)")
    source = source.replace(after_block, "\n        if i == 0:\n            first_out = x" + after_block)
    path = pathlib.Path(tempfile.mkdtemp()) / "altered_mmdit_loop.py"
    # A module of its own (the annotations need torch and Optional when the def runs), loaded with importlib as a
    # release's file would be; the function then runs with mmdit's own globals, as the loop it replaces does.
    path.write_text("import torch\nfrom typing import Optional\n\n" + source)
    spec = importlib.util.spec_from_file_location("snrt_altered_mmdit_loop", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function = module.forward_core_with_concat
    return types.FunctionType(function.__code__, vars(mmdit), function.__name__, function.__defaults__)


def break_door(name, monkeypatch, internals=None):
    """Change ComfyUI the way a release could, under one door; returns the words its problem must name."""
    import comfy.ldm.modules.diffusionmodules.mmdit as mmdit
    import comfy.model_sampling
    import comfy.sample
    import comfy.samplers
    import comfy.supported_models
    if name == "dit":
        monkeypatch.setattr(mmdit.MMDiT, "forward_core_with_concat", altered_loop())
        return "block loop"
    if name == "model_sampling":
        monkeypatch.setattr(comfy.model_sampling.ModelSamplingDiscrete, "sigma_max", 14.6)
        return "sigma_max is no longer a property"
    if name == "model_sampling_flow":  # a release that rebuilds the flow table without its shift
        set_parameters = comfy.model_sampling.ModelSamplingDiscreteFlow.set_parameters
        monkeypatch.setattr(comfy.model_sampling.ModelSamplingDiscreteFlow, "set_parameters",
                            lambda self, shift=1.0, timesteps=1000, multiplier=1000: set_parameters(
                                self, 3.0, timesteps, multiplier))
        return "ModelSamplingDiscreteFlow: scaling its shift no longer scales every σ/(1 − σ)"
    if name == "supported_models_subclass":  # a release that makes a listed family subclass another
        monkeypatch.setattr(comfy.supported_models, "FluxSchnell", type("FluxSchnell", (comfy.supported_models.SD3,), {}))
        return "FluxSchnell now subclasses SD3, listed before it"
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
    if name == "checkpoint_loading":  # a release that stops reading the v_pred key the precedence ranks first
        monkeypatch.setattr(comfy.supported_models.SDXL, "model_type", lambda self, state_dict, prefix="": None)
        return "no longer reads the v_pred / ztsnr keys"
    if name == "trainer":  # a release whose trainer computes its loss inline, not through the criterion it was given
        trainer_sampler = internals.door("trainer").trainer_sampler_class()
        monkeypatch.setattr(trainer_sampler, "fwd_bwd", lambda self, *args, **kwargs: None)
        return "fwd_bwd no longer computes its loss with self.loss_fn"
    raise AssertionError(name)


@pytest.mark.parametrize("name", DOORS)
def test_a_changed_internal_is_named(internals, name, monkeypatch):
    words = break_door(name, monkeypatch, internals)
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
    door = comfy_host.pack_module("internals.dit")
    assert door.fork_problems(type(model.model.diffusion_model), door.FAMILIES[0]) == []
    break_door("dit", monkeypatch)
    with caplog.at_level(logging.INFO, logger="snr_toolkit"):
        fast = sample_sd35(comfy_host, slg(comfy_host, model, fast_path=True))
    assert "fast path off, the plain extra pass runs instead (same output, slower)" in caplog.text
    assert "SD3's block loop (OpenAISignatureMMDITWrapper, fingerprint" in caplog.text
    assert "forked at block" not in caplog.text
    plain = sample_sd35(comfy_host, slg(comfy_host, model, fast_path=False))
    assert torch.equal(fast, plain)
    # Why the guard matters: forced past it, the fork copies the old loop and gives a different image.
    monkeypatch.setattr(comfy_host.pack_module("nodes.skip_layer_guidance"), "model_fork_problems", lambda *a: [])
    forced = sample_sd35(comfy_host, slg(comfy_host, model, fast_path=True))
    assert not torch.allclose(forced, plain, atol=1e-4), "the altered loop must matter to the fork"


def test_loading_the_pack_warns_once_per_changed_internal(internals, monkeypatch, caplog):
    assert internals.warn_on_load() == []
    internals._problems_cached.cache_clear()
    break_door("cfg", monkeypatch)
    with caplog.at_level(logging.WARNING, logger="snr_toolkit"):
        assert internals.warn_on_load() == ["cfg"]
    assert "changed what internals/cfg.py relies on: calc_cond_batch's parameters" in caplog.text


@pytest.mark.parametrize("change,name", [("model_sampling_flow", "model_sampling"),
                                         ("supported_models_subclass", "supported_models")])
def test_a_changed_flow_internal_is_named(internals, change, name, monkeypatch):
    words = break_door(change, monkeypatch)
    found = internals.door(name).contract_problems()
    assert found and any(words in problem for problem in found), found


def test_scale_sigma_max_stops_when_the_flow_shift_changed(internals, comfy_host, monkeypatch):
    from tools import tiny_models
    model = tiny_models.tiny_sd3_medium(num_blocks=2)
    break_door("model_sampling_flow", monkeypatch)
    error = comfy_host.pack_module("errors").SNRToolkitError
    with pytest.raises(error, match="changed an internal.*no longer scales every"):
        comfy_host.node("SNRTSigmaMaxScale").execute(model, 2048, 2048, 0, None)
