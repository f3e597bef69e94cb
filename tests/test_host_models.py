"""SNRTSigmaMaxScale and SNRTVPrediction on tiny real-architecture models, sampled by ComfyUI's own sampler."""
import copy
import logging
import math

import pytest
import torch

from snr_toolkit.schedules import ztsnr

PLAIN_SIGMA_MAX = 14.614642
DEFAULT_BASE = 400.0  # the ztsnr_* σ_hi at the training resolution (nodes/scheduler.py)


@pytest.fixture()
def noob(host):
    from tools import tiny_models
    return tiny_models.tiny_sdxl(v_pred=True, ztsnr=True)


@pytest.fixture()
def plain_sdxl(host):
    from tools import tiny_models
    return tiny_models.tiny_sdxl(v_pred=False, ztsnr=False)


def snapshot(model):
    """Everything a patch node could touch on a ModelPatcher."""
    return dict(object_patches=dict(model.object_patches), model_options=copy.deepcopy(model.model_options),
                wrappers={k: {k1: list(v1) for k1, v1 in v.items()} for k, v in model.wrappers.items()},
                patches={k: list(v) for k, v in model.patches.items()},
                model_sampling=model.get_model_object("model_sampling"),
                sigmas=model.get_model_object("model_sampling").sigmas.clone())


def assert_unchanged(model, before):
    after = snapshot(model)
    assert after["object_patches"] == before["object_patches"]
    assert after["wrappers"] == before["wrappers"]
    assert after["patches"] == before["patches"]
    assert after["model_sampling"] is before["model_sampling"]
    assert torch.equal(after["sigmas"], before["sigmas"])
    assert repr(after["model_options"]) == repr(before["model_options"])


def scale(host, model, width=1024, height=1024, base_side=0, latent=None):
    return host.node("SNRTSigmaMaxScale").execute(model, width, height, base_side, latent)[0]


def v_prediction(host, model, prediction="auto", zsnr="auto", terminal="NovelAI (20000)", skip=False):
    return host.node("SNRTVPrediction").execute(model, prediction, zsnr, terminal, skip)[0]


def recording(model):
    """A clone whose UNet calls are recorded as (max σ, batch size)."""
    calls = []

    def wrapper(apply_model, args):
        calls.append((float(args["timestep"].max()), args["input"].shape[0]))
        return apply_model(args["input"], args["timestep"], **args["c"])
    clone = model.clone()
    clone.set_model_unet_function_wrapper(wrapper)
    return clone, calls


def ksample(host, model, sampler="euler", scheduler="karras", steps=6, cfg=5.0, size=16):
    from tools import tiny_models
    cond = tiny_models.sdxl_conditioning()
    latent = {"samples": torch.zeros(1, 4, size, size)}
    return host.nodes.KSampler().sample(model, 7, steps, cfg, sampler, scheduler, cond, cond, latent)[0]["samples"]


# --- Scale σ_max by Resolution --------------------------------------------------------------------

@pytest.mark.parametrize("width,height,expected", [
    (1024, 1024, 14.6146), (2048, 2048, 29.229), (832, 1216, 14.614642 * math.sqrt(832 * 1216) / 1024)])
def test_sigma_max_follows_novelai_rule_on_sdxl(host, plain_sdxl, width, height, expected):
    before = snapshot(plain_sdxl)
    scaled = scale(host, plain_sdxl, width, height)
    assert float(scaled.get_model_object("model_sampling").sigma_max) == pytest.approx(expected, abs=1e-3)
    assert_unchanged(plain_sdxl, before)
    assert float(plain_sdxl.get_model_object("model_sampling").sigma_max) == pytest.approx(14.6146, abs=1e-4)


@pytest.mark.parametrize("core", ["karras", "exponential", "kl_optimal"])
def test_core_schedulers_follow_the_scaled_sigma_max(host, plain_sdxl, core):
    import comfy.samplers
    scaled = scale(host, plain_sdxl, 2048, 2048)
    sigmas = comfy.samplers.calculate_sigmas(scaled.get_model_object("model_sampling"), core, 10)
    assert float(sigmas[0]) == pytest.approx(2 * PLAIN_SIGMA_MAX, rel=1e-5)


def test_ksampler_node_with_core_karras_starts_at_the_scaled_sigma(host, plain_sdxl):
    model, calls = recording(scale(host, plain_sdxl, 2048, 2048))
    out = ksample(host, model, "euler", "karras", steps=4)
    assert calls[0][0] == pytest.approx(2 * PLAIN_SIGMA_MAX, rel=1e-5)
    assert bool(torch.isfinite(out).all())


def test_latent_input_sets_the_canvas(host, plain_sdxl):
    scaled = scale(host, plain_sdxl, 1, 1, latent={"samples": torch.zeros(1, 4, 152, 104)})  # 832×1216
    expected = PLAIN_SIGMA_MAX * math.sqrt(832 * 1216) / 1024
    assert float(scaled.get_model_object("model_sampling").sigma_max) == pytest.approx(expected, rel=1e-5)


def test_on_a_ztsnr_model_only_the_ztsnr_sigma_hi_scales(host, noob):
    import comfy.samplers
    scaled = scale(host, noob, 2048, 2048)
    model_sampling = scaled.get_model_object("model_sampling")
    assert float(model_sampling.sigma_max) == pytest.approx(4518.76, abs=0.01)
    sigmas = comfy.samplers.calculate_sigmas(model_sampling, "ztsnr_karras", 28)
    assert float(sigmas[0]) == 20000.0
    assert float(sigmas[1]) == pytest.approx(2 * DEFAULT_BASE, rel=1e-5)


def test_scale_refuses_non_positive_sizes(host, plain_sdxl):
    # Flow models are scaled through their shift: tests/test_host_flow_shift.py.
    with pytest.raises(ValueError, match="positive"):
        scale(host, plain_sdxl, 0, 1024)
    with pytest.raises(ValueError, match="positive"):
        scale(host, plain_sdxl, 1024, -64)


# --- V-Prediction / ZTSNR -------------------------------------------------------------------------

def test_auto_keeps_what_the_loader_detected(host, noob, caplog):
    import comfy.model_sampling
    with caplog.at_level(logging.WARNING):
        patched = v_prediction(host, noob)
    model_sampling = patched.get_model_object("model_sampling")
    assert isinstance(model_sampling, comfy.model_sampling.V_PREDICTION) and model_sampling.zsnr
    loaded = noob.get_model_object("model_sampling").sigmas
    assert torch.allclose(model_sampling.sigmas[:-1], loaded[:-1])
    assert float(loaded[-1]) == pytest.approx(4518.76, abs=0.01)  # the loader pins ComfyUI's ᾱ_T
    assert float(model_sampling.sigmas[-1]) == 20000.0  # the node's default terminal, NovelAI's
    comfy_pin = v_prediction(host, noob, terminal="ComfyUI (4518.76)").get_model_object("model_sampling")
    assert torch.equal(comfy_pin.sigmas, loaded)
    assert "without the 'ztsnr' key" not in caplog.text


def test_forcing_ztsnr_on_a_v_pred_checkpoint_without_the_key_warns(host, caplog):
    import comfy.model_sampling
    from tools import tiny_models
    vpred_only = tiny_models.tiny_sdxl(v_pred=True, ztsnr=False)
    with caplog.at_level(logging.WARNING):
        patched = v_prediction(host, vpred_only, zsnr="on", terminal="NovelAI (20000)")
    assert "without the 'ztsnr' key" in caplog.text
    model_sampling = patched.get_model_object("model_sampling")
    assert isinstance(model_sampling, comfy.model_sampling.V_PREDICTION)
    plain = ztsnr.sigmas_from_alphas_cumprod(ztsnr.alphas_cumprod_from_betas(ztsnr.scaled_linear_betas()))
    assert torch.allclose(model_sampling.sigmas.double(), ztsnr.zero_terminal_snr_sigmas(plain, 20000.0), rtol=1e-5)
    assert float(model_sampling.sigma_max) == 20000.0


@pytest.mark.parametrize("sigma", [20000.0, 2254.0, 3.0, 0.1])
def test_v_prediction_denoised_formula_on_an_eps_checkpoint_switched_to_v(host, plain_sdxl, sigma):
    import comfy.model_management
    from tools import tiny_models
    before = snapshot(plain_sdxl)
    patched = v_prediction(host, plain_sdxl, prediction="v_prediction", zsnr="on", terminal="NovelAI (20000)")
    assert_unchanged(plain_sdxl, before)

    torch.manual_seed(3)
    x = torch.randn(1, 4, 8, 8) * math.sqrt(sigma**2 + 1)
    context = tiny_models.sdxl_conditioning()[0][0]
    y = torch.randn(1, 2816) * 0.1
    sigma_t = torch.tensor([sigma])
    comfy.model_management.load_models_gpu([patched])
    try:
        denoised = patched.model.apply_model(x, sigma_t, c_crossattn=context, y=y)
        # Independently: the timestep nearest in log σ on our own ZTSNR table, the VP input scaling, and
        # the v-parameterisation x0 = x·σd²/(σ²+σd²) − v·σ·σd/√(σ²+σd²) with σd = 1 (Salimans & Ho 2022).
        plain = ztsnr.sigmas_from_alphas_cumprod(ztsnr.alphas_cumprod_from_betas(ztsnr.scaled_linear_betas()))
        table = ztsnr.zero_terminal_snr_sigmas(plain, 20000.0).float()
        timestep = (table.log() - math.log(sigma)).abs().argmin().float().view(1)
        v = patched.model.diffusion_model(x / math.sqrt(sigma**2 + 1), timestep, context=context, y=y)
        expected = x / (sigma**2 + 1) - v * sigma / math.sqrt(sigma**2 + 1)
    finally:
        patched.unpatch_model()
    assert torch.allclose(denoised, expected, rtol=1e-4, atol=1e-5)
    assert_unchanged(plain_sdxl, before)


def test_v_prediction_errors_name_the_fix(host, plain_sdxl, noob):
    from tools import tiny_models
    error = host.pack_module("errors").SNRToolkitError
    with pytest.raises(error, match="ZTSNR needs v_prediction"):
        v_prediction(host, plain_sdxl, prediction="eps", zsnr="on")
    with pytest.raises(error, match="skip_cfg_on_terminal_step needs ZTSNR"):
        v_prediction(host, plain_sdxl, zsnr="off", skip=True)
    with pytest.raises(error, match="flow-matching"):
        v_prediction(host, tiny_models.tiny_sd3_medium(num_blocks=2))


def test_v_prediction_keeps_a_resolution_factor_set_before_it(host, noob):
    import comfy.samplers
    patched = v_prediction(host, scale(host, noob, 2048, 2048), terminal="ComfyUI (4518.76)")
    sigmas = comfy.samplers.calculate_sigmas(patched.get_model_object("model_sampling"), "ztsnr_karras", 10)
    assert float(sigmas[0]) == pytest.approx(4518.76, abs=0.01)  # the terminal chosen in the node
    assert float(sigmas[1]) == pytest.approx(2 * DEFAULT_BASE, rel=1e-5)


def test_skip_cfg_on_terminal_step_runs_the_cond_pass_alone_there(host, noob):
    before = snapshot(noob)
    model, calls = recording(v_prediction(host, noob, skip=True))
    out = ksample(host, model, "euler", "ztsnr_karras", steps=5)
    assert_unchanged(noob, before)
    assert bool(torch.isfinite(out).all())
    assert calls[0] == (20000.0, 1), "terminal step: the cond batch only"
    assert all(batch == 2 for _, batch in calls[1:]), calls
    # Without the option every step batches cond and uncond.
    model, calls = recording(v_prediction(host, noob))
    ksample(host, model, "euler", "ztsnr_karras", steps=5)
    assert [batch for _, batch in calls] == [2] * 5


# --- ComfyUI's real samplers from σ₀ = 20000 -----------------------------------------------------------

@pytest.mark.parametrize("sampler", ["euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde"])
def test_ksampler_node_from_infinite_noise_is_finite_fp32(host, noob, sampler):
    model, calls = recording(v_prediction(host, noob))
    out = ksample(host, model, sampler, "ztsnr_karras", steps=6)
    assert calls[0][0] == 20000.0
    assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())
    assert float(out.std()) > 0


@pytest.mark.parametrize("sampler", ["euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde"])
def test_sampler_custom_advanced_with_the_scheduler_node_is_finite_fp32(host, noob, sampler):
    from tools import tiny_models
    model, calls = recording(noob)
    sigmas = host.node("SNRTScheduler").execute(model, 6, "karras", "infinite (20000)", PLAIN_SIGMA_MAX, 1.0, None)[0]
    cond = tiny_models.sdxl_conditioning()
    noise = host.node("RandomNoise").execute(11)[0]
    guider = host.node("CFGGuider").execute(model, cond, cond, 5.0)[0]
    sampler_object = host.node("KSamplerSelect").execute(sampler)[0]
    latent = {"samples": torch.zeros(1, 4, 16, 16)}
    out = host.node("SamplerCustomAdvanced").execute(noise, guider, sampler_object, sigmas, latent)[0]["samples"]
    assert calls[0][0] == 20000.0
    assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())
