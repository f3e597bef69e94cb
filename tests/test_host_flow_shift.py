"""Scale σ_max by Resolution on flow-matching models: tiny random-weight instances of ComfyUI's own SD3,
Flux, Wan, LTX-Video and HunyuanVideo classes, their schedules from ComfyUI's own schedulers and nodes."""
import copy
import logging
import math

import pytest
import torch

from snr_toolkit.schedules import flow_shift

SQRT = "√ pixels (SD3 paper, NovelAI)"
OWN = "family's own (ComfyUI)"


@pytest.fixture(scope="module")
def sd3(host):
    from tools import tiny_models
    return tiny_models.tiny_sd3_medium(num_blocks=2)


@pytest.fixture(scope="module")
def flux(host):
    from tools import tiny_dits
    return tiny_dits.tiny_flux(depth=1, depth_single_blocks=1)


@pytest.fixture(scope="module")
def wan(host):
    from tools import tiny_dits
    return tiny_dits.tiny_wan(num_layers=1)


def scale(host, model, width=1024, height=1024, base_side=0, latent=None, rule=SQRT, **steps):
    return host.node("SNRTSigmaMaxScale").execute(model, width, height, base_side, latent, rule, **steps)[0]


def sampling(model):
    return model.get_model_object("model_sampling")


def simple_sigmas(model, steps=10):
    import comfy.samplers
    return comfy.samplers.calculate_sigmas(sampling(model), "simple", steps).double()


def ve(sigmas):
    """σ/(1 − σ) of the finite, non-terminal part of a flow schedule (σ 1 is t = 1, σ 0 the end)."""
    inner = sigmas[(sigmas > 0) & (sigmas < 0.99)]
    return inner / (1 - inner)


def frozen(model):
    ms = sampling(model)
    return dict(patches=dict(model.object_patches), options=repr(copy.deepcopy(model.model_options)),
                sampling=ms, shift=float(ms.shift), sigmas=ms.sigmas.clone())


def assert_unchanged(model, before):
    after = frozen(model)
    assert after["patches"] == before["patches"] and after["options"] == before["options"]
    assert after["sampling"] is before["sampling"] and after["shift"] == before["shift"]
    assert torch.equal(after["sigmas"], before["sigmas"])


# --- SD3 (ModelSamplingDiscreteFlow, shift α) -------------------------------------------------------

def test_sd3_twice_the_side_doubles_the_shift_and_every_sigma_ve(host, sd3, caplog):
    before = frozen(sd3)
    with caplog.at_level(logging.INFO, logger="snr_toolkit"):
        scaled = scale(host, sd3, 2048, 2048)
    assert float(sampling(scaled).shift) == pytest.approx(6.0)
    assert type(sampling(scaled)) is type(sampling(sd3)) and sampling(scaled).multiplier == 1000
    assert torch.allclose(ve(simple_sigmas(scaled)), 2 * ve(simple_sigmas(sd3))[: len(ve(simple_sigmas(scaled)))],
                          rtol=1e-4)
    assert_unchanged(sd3, before)
    assert "SD3 flow model, shift 3.0000 → 6.0000 (σ/(1−σ) ×2.0000" in caplog.text


def test_sd3_result_is_comfyuis_own_model_sampling_sd3_at_the_scaled_shift(host, sd3):
    ours = scale(host, sd3, 1536, 1024)
    factor = math.sqrt(1536 * 1024) / 1024
    theirs = host.node("ModelSamplingSD3")().patch(sd3, 3.0 * factor)[0]
    for scheduler in ("simple", "normal", "beta", "karras"):
        import comfy.samplers
        a = comfy.samplers.calculate_sigmas(sampling(ours), scheduler, 12)
        b = comfy.samplers.calculate_sigmas(sampling(theirs), scheduler, 12)
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), scheduler


def test_a_shift_set_upstream_is_scaled_not_replaced(host, sd3, caplog):
    upstream = host.node("ModelSamplingSD3")().patch(sd3, 5.0)[0]
    with caplog.at_level(logging.INFO, logger="snr_toolkit"):
        scaled = scale(host, upstream, 2048, 2048)
    assert float(sampling(scaled).shift) == pytest.approx(10.0)
    assert float(sampling(upstream).shift) == 5.0
    assert "shift 5.0000 → 10.0000" in caplog.text
    # Chained twice it composes: ×2 then ×0.5 is the model's own shift again.
    back = scale(host, scaled, 512, 512)
    assert float(sampling(back).shift) == pytest.approx(5.0)


def test_base_resolution_canvas_changes_nothing_and_base_side_overrides(host, sd3):
    assert float(sampling(scale(host, sd3, 1024, 1024)).shift) == pytest.approx(3.0)
    assert float(sampling(scale(host, sd3, 1024, 1024, base_side=512)).shift) == pytest.approx(6.0)


def test_ksampler_steps_through_the_scaled_schedule(host, sd3):
    seen = []

    def wrapper(apply_model, args):
        seen.append(float(args["timestep"].max()))
        return apply_model(args["input"], args["timestep"], **args["c"])
    scaled = scale(host, sd3, 2048, 2048).clone()
    scaled.set_model_unet_function_wrapper(wrapper)
    generator = torch.Generator().manual_seed(5)
    cond = [[torch.randn(1, 8, 4096, generator=generator) * 0.1,
             {"pooled_output": torch.randn(1, 2048, generator=generator) * 0.1}]]
    out = host.nodes.KSampler().sample(scaled, 3, 4, 1.0, "euler", "simple", cond, cond,
                                       {"samples": torch.zeros(1, 16, 8, 8)})[0]["samples"]
    expected = simple_sigmas(scale(host, sd3, 2048, 2048), 4)[:-1]  # the wrapper sees σ, before σ → timestep
    assert seen == pytest.approx(expected.tolist(), rel=1e-4)
    assert seen[1] > float(simple_sigmas(sd3, 4)[1]) + 0.02  # more noise at each step than the base model
    assert bool(torch.isfinite(out).all())


# --- Flux (ModelSamplingFlux, shift μ) ---------------------------------------------------------------

def test_flux_twice_the_side_adds_ln2_to_mu(host, flux):
    before = frozen(flux)
    scaled = scale(host, flux, 2048, 2048)
    assert float(sampling(scaled).shift) == pytest.approx(1.15 + math.log(2))
    assert len(sampling(scaled).sigmas) == len(sampling(flux).sigmas) == 10000
    assert torch.allclose(ve(simple_sigmas(scaled)), 2 * ve(simple_sigmas(flux))[: len(ve(simple_sigmas(scaled)))],
                          rtol=1e-4)
    assert_unchanged(flux, before)


@pytest.mark.parametrize("width,height", [(512, 512), (1024, 1024), (1536, 1024), (2048, 2048)])
def test_flux_own_rule_is_comfyuis_model_sampling_flux(host, flux, width, height):
    import comfy.samplers
    ours = scale(host, flux, width, height, rule=OWN)
    theirs = host.node("ModelSamplingFlux")().patch(flux, 1.15, 0.5, width, height)[0]
    assert float(sampling(ours).shift) == pytest.approx(float(sampling(theirs).shift), rel=1e-6)
    a = comfy.samplers.calculate_sigmas(sampling(ours), "simple", 20)
    b = comfy.samplers.calculate_sigmas(sampling(theirs), "simple", 20)
    assert torch.allclose(a, b, rtol=1e-5)


def test_flux_latent_gives_the_canvas(host, flux):
    latent = {"samples": torch.zeros(1, 16, 256, 256)}  # Flux's VAE: 8 pixels per cell → 2048²
    assert float(sampling(scale(host, flux, 1, 1, latent=latent)).shift) == pytest.approx(1.15 + math.log(2))


def test_family_rules_match_comfyuis_own_flux2_and_ltxv_code(host, flux):
    from comfy_extras import nodes_flux
    for tokens in (1024, 4096, 4300, 6000, 16384):
        for steps in (4, 20, 50):
            assert flow_shift.flux2_empirical_mu(tokens, steps) == pytest.approx(
                nodes_flux.compute_empirical_mu(tokens, steps), rel=1e-9)
    ltxv_node = host.node("ModelSamplingLTXV")
    for shape in ((1, 128, 13, 16, 24), (1, 128, 4, 8, 8), (1, 128, 25, 22, 40)):
        theirs = ltxv_node.execute(flux, 2.05, 0.95, {"samples": torch.zeros(shape)})[0]
        assert flow_shift.family_rule_mu("ltxv", 0, 0, math.prod(shape[2:])) == pytest.approx(
            float(sampling(theirs).shift), rel=1e-9)


@pytest.mark.parametrize("steps", [4, 20, 28, 50])
@pytest.mark.parametrize("width,height", [(512, 512), (1024, 1024), (1536, 1024)])
def test_flux2_own_rule_uses_the_scheduled_steps_as_comfyuis_flux2_scheduler(host, width, height, steps, caplog):
    import comfy.samplers
    from comfy_extras import nodes_flux
    from tools import tiny_dits
    flux2 = tiny_dits.tiny_flux2()
    assert float(sampling(flux2).shift) == pytest.approx(2.02)  # ComfyUI's configured Flux 2 μ
    with caplog.at_level(logging.INFO, logger="snr_toolkit"):
        ours = scale(host, flux2, width, height, rule=OWN, steps=steps)
    assert "Flux 2 flow model" in caplog.text and f"at {steps} steps" in caplog.text
    mu = nodes_flux.compute_empirical_mu(round(width * height / 256), steps)  # what Flux2Scheduler uses
    assert float(sampling(ours).shift) == pytest.approx(mu, rel=1e-6)
    # The patched model's σ(t) at Flux2Scheduler's times t = 1 … 0 is Flux2Scheduler's own schedule; KSampler's
    # `simple` picks those t from the model's 10000-entry table, exactly where 10000 / steps is whole.
    theirs = nodes_flux.Flux2Scheduler.execute(steps, width, height)[0].float()
    curve = sampling(ours).sigma(torch.linspace(1, 0, steps + 1)).float()
    assert torch.allclose(curve, theirs, rtol=1e-5, atol=1e-6)
    simple = comfy.samplers.calculate_sigmas(sampling(ours), "simple", steps).float()
    assert torch.allclose(simple, theirs, rtol=1e-5, atol=1e-6) if 10000 % steps == 0 else \
        float((simple - theirs).abs().max()) < 1e-3
    assert float(sampling(flux2).shift) == pytest.approx(2.02), "the input model is not mutated"


def test_flux2_step_count_changes_the_shift_only_below_4300_tokens(host):
    from tools import tiny_dits
    flux2 = tiny_dits.tiny_flux2()
    at = {steps: float(sampling(scale(host, flux2, 1024, 1024, rule=OWN, steps=steps)).shift) for steps in (20, 50)}
    assert at[50] == pytest.approx(2.02, abs=0.005) and at[20] > at[50] + 0.15  # fewer steps, more shift
    big = {steps: float(sampling(scale(host, flux2, 1536, 1536, rule=OWN, steps=steps)).shift) for steps in (4, 50)}
    assert big[4] == pytest.approx(big[50], rel=1e-9)
    # √ pixels ignores the steps.
    assert float(sampling(scale(host, flux2, 2048, 2048, steps=4)).shift) == pytest.approx(2.02 + math.log(2))


def test_unverified_base_canvases_are_named_in_the_tooltip_and_the_log(host, caplog):
    from tools import tiny_dits
    resolution = host.pack_module("schedules.resolution")
    schema = host.node("SNRTSigmaMaxScale").define_schema()
    tooltip = next(i.tooltip for i in schema.inputs if i.id == "base_side")
    assert resolution.UNVERIFIED_BASE and all(family in tooltip for family in resolution.UNVERIFIED_BASE)
    qwen = tiny_dits.tiny_qwen_image(num_layers=1)
    with caplog.at_level(logging.INFO, logger="snr_toolkit"):
        scale(host, qwen, 2656, 2656)
        scale(host, qwen, 2656, 2656, base_side=1024)
    assert caplog.text.count("unverified for Qwen-Image") == 1, "only when the family's base is used"


# --- video: Wan (5-D latent, per-frame pixels) ---------------------------------------------------------

def test_wan_uses_per_frame_pixels_of_the_video_latent(host, wan, caplog):
    before = frozen(wan)
    latent = {"samples": torch.zeros(1, 16, 21, 180, 320)}  # 81 frames of 2560×1440 at 8 pixels per cell
    with caplog.at_level(logging.INFO, logger="snr_toolkit"):
        scaled = scale(host, wan, 1, 1, latent=latent)
    assert float(sampling(scaled).shift) == pytest.approx(8.0 * 2)  # ComfyUI's Wan shift 8 at 1280×720
    assert "Wan 2.1 flow model" in caplog.text and "2560×1440" in caplog.text
    assert_unchanged(wan, before)
    with pytest.raises(host.pack_module("errors").SNRToolkitError, match="no resolution rule of its own for Wan"):
        scale(host, wan, 1280, 720, rule=OWN)


def test_ltxv_own_rule_counts_frames_and_needs_the_latent(host):
    from tools import tiny_dits
    ltxv = tiny_dits.tiny_ltxv(num_layers=1)
    error = host.pack_module("errors").SNRToolkitError
    with pytest.raises(error, match="connect the video latent"):
        scale(host, ltxv, 768, 512, rule=OWN)
    latent = {"samples": torch.zeros(1, 128, 13, 16, 24)}  # 768×512 (32 pixels per cell), 97 frames
    same = scale(host, ltxv, 1, 1, latent=latent, rule=OWN)
    assert float(sampling(same).shift) == pytest.approx(2.37, abs=0.005)  # the configured μ is the rule here
    bigger = {"samples": torch.zeros(1, 128, 13, 32, 48)}
    theirs = host.node("ModelSamplingLTXV").execute(ltxv, 2.05, 0.95, bigger)[0]
    ours = scale(host, ltxv, 1, 1, latent=bigger, rule=OWN)
    assert float(sampling(ours).shift) == pytest.approx(float(sampling(theirs).shift), rel=1e-6)  # unpatched: equal
    # √ pixels on the same latent: 1536×1024 per frame against 768×512, μ + ln 2.
    sqrt_rule = scale(host, ltxv, 1, 1, latent=bigger)
    assert float(sampling(sqrt_rule).shift) == pytest.approx(2.37 + math.log(2))


# --- errors --------------------------------------------------------------------------------------------

def test_models_with_neither_betas_nor_a_flow_shift_get_an_error_naming_the_fix(host):
    from tools import tiny_models
    edm = host.node("ModelSamplingContinuousEDM")().patch(tiny_models.tiny_sdxl(False, False), "v_prediction",
                                                          120.0, 0.002)[0]
    error = host.pack_module("errors").SNRToolkitError
    with pytest.raises(error, match="neither a DDPM β table.*nor a flow shift.*ModelSamplingContinuousEDM"):
        scale(host, edm, 2048, 2048)


def test_family_rule_on_a_discrete_or_rule_less_model_is_refused(host, sd3):
    from tools import tiny_models
    error = host.pack_module("errors").SNRToolkitError
    with pytest.raises(error, match="flow models only"):
        scale(host, tiny_models.tiny_sdxl(False, False), 2048, 2048, rule=OWN)
    with pytest.raises(error, match="no resolution rule of its own for SD3"):
        scale(host, sd3, 2048, 2048, rule=OWN)
    with pytest.raises(ValueError, match="positive"):
        scale(host, sd3, 0, 1024)
