"""Schedules on the real ComfyUI host: registry, SNRTScheduler, ztsnr_* and ComfyUI's own references."""
import pytest
import torch

from snr_toolkit.schedules import shapes, ztsnr

PLAIN_SIGMA_MAX = 14.614642
DEFAULT_BASE = 400.0  # nodes/scheduler.py DEFAULT_SIGMA_HI_BASE, chosen by benchmarks/schedule_quality.py


@pytest.fixture(scope="module")
def noob(host):
    """A NoobAI-XL-style model: SDXL with the checkpoint's v_pred and ztsnr marker keys."""
    from tools import tiny_models
    return tiny_models.tiny_sdxl(v_pred=True, ztsnr=True)


@pytest.fixture(scope="module")
def plain_sdxl(host):
    from tools import tiny_models
    return tiny_models.tiny_sdxl(v_pred=False, ztsnr=False)


def scheduler_node(host, model, steps=28, shape="exponential", terminal="infinite (20000)", base=DEFAULT_BASE,
                   denoise=1.0, latent=None):
    return host.node("SNRTScheduler").execute(model, steps, shape, terminal, base, denoise, latent)[0]


# --- registry --------------------------------------------------------------------------------

def test_schedulers_registered_in_place_next_to_another_pack(host):
    import comfy.samplers
    names = host.pack_module("nodes.scheduler").KSAMPLER_SCHEDULER_NAMES
    assert comfy.samplers.KSampler.SCHEDULERS is comfy.samplers.SCHEDULER_NAMES
    combo = host.nodes.KSampler.INPUT_TYPES()["required"]["scheduler"][0]
    for name in names + ["fixture_linear"]:
        assert comfy.samplers.SCHEDULER_NAMES.count(name) == 1, name
        assert name in combo and name in comfy.samplers.SCHEDULER_HANDLERS


def test_loading_the_extension_twice_adds_nothing_twice(host, noob, plain_sdxl):
    import asyncio
    import comfy.samplers
    before = list(comfy.samplers.SCHEDULER_NAMES)
    names_object = comfy.samplers.SCHEDULER_NAMES
    assert host.load_pack_again()
    extension = asyncio.run(host.pack_module().comfy_entrypoint())
    asyncio.run(extension.on_load())
    assert comfy.samplers.SCHEDULER_NAMES is names_object
    assert comfy.samplers.SCHEDULER_NAMES == before
    assert comfy.samplers.KSampler.SCHEDULERS is comfy.samplers.SCHEDULER_NAMES
    # Both packs' schedulers still compute.
    ours = comfy.samplers.calculate_sigmas(noob.get_model_object("model_sampling"), "ztsnr_karras", 10)
    theirs = comfy.samplers.calculate_sigmas(plain_sdxl.get_model_object("model_sampling"), "fixture_linear", 10)
    assert float(ours[0]) == 20000.0 and len(ours) == 11
    assert float(theirs[0]) == pytest.approx(PLAIN_SIGMA_MAX, rel=1e-5) and len(theirs) == 11


# --- ComfyUI references --------------------------------------------------------------------------

def test_our_rescale_agrees_with_comfyui_everywhere_but_the_pin(host):
    import comfy.model_sampling
    plain = ztsnr.sigmas_from_alphas_cumprod(ztsnr.alphas_cumprod_from_betas(ztsnr.scaled_linear_betas()))
    theirs = comfy.model_sampling.rescale_zero_terminal_snr_sigmas(plain.clone())
    ours_comfy_pin = ztsnr.zero_terminal_snr_sigmas(plain, ztsnr.COMFYUI_TERMINAL_SIGMA)
    ours_nai_pin = ztsnr.zero_terminal_snr_sigmas(plain, ztsnr.NOVELAI_TERMINAL_SIGMA)
    assert torch.allclose(ours_nai_pin[:-1], theirs[:-1].double(), rtol=1e-9)
    assert float(ours_comfy_pin[-1]) == pytest.approx(float(theirs[-1]), rel=1e-9)
    assert float(ours_nai_pin[-1]) == 20000.0


def test_loader_ztsnr_table_is_ours(noob):
    table = noob.get_model_object("model_sampling").sigmas.double()
    plain = ztsnr.sigmas_from_alphas_cumprod(ztsnr.alphas_cumprod_from_betas(ztsnr.scaled_linear_betas()))
    assert torch.allclose(table, ztsnr.zero_terminal_snr_sigmas(plain), rtol=1e-5)


def test_comfyui_karras_and_simple_on_a_ztsnr_model_match_the_reference_numbers(noob):
    import comfy.samplers
    model_sampling = noob.get_model_object("model_sampling")
    karras = comfy.samplers.calculate_sigmas(model_sampling, "karras", 28)
    simple = comfy.samplers.calculate_sigmas(model_sampling, "simple", 28)
    assert int((karras[:-1] > 14.6).sum()) == 19
    assert simple[:4].tolist() == pytest.approx([4518.76, 59.65, 27.17, 16.70], abs=0.01)


def test_steps_above_the_plain_sigma_max_ours_versus_core_karras(host, noob):
    import math

    import comfy.samplers
    model_sampling = noob.get_model_object("model_sampling")
    core = comfy.samplers.calculate_sigmas(model_sampling, "karras", 28)
    ours = comfy.samplers.calculate_sigmas(model_sampling, "ztsnr_exponential", 28)
    above = lambda sigmas: int((sigmas[:-1] > PLAIN_SIGMA_MAX * (1 + 1e-5)).sum())  # noqa: E731
    print(f"steps above σ 14.6146 of 28: core karras {above(core)}, ztsnr_exponential {above(ours)}")
    assert above(core) == 19
    # Ours: the terminal step, then 27 log-uniform sigmas from 400 to σ_min; sigma i of them is above
    # 14.6146 while i/26 < ln(400/14.6146)/ln(400/σ_min).
    sigma_min = float(model_sampling.sigmas[0])
    fraction = math.log(DEFAULT_BASE / PLAIN_SIGMA_MAX) / math.log(DEFAULT_BASE / sigma_min)
    assert above(ours) == 1 + sum(1 for i in range(27) if i / 26 < fraction) == 11


@pytest.mark.parametrize("shape,core", [("karras", "karras"), ("exponential", "exponential"),
                                        ("kl_optimal", "kl_optimal"), ("normal", "normal"),
                                        ("sgm_uniform", "sgm_uniform"), ("simple", "simple")])
def test_shapes_without_terminal_equal_comfyui_on_a_plain_model(host, plain_sdxl, shape, core):
    import comfy.samplers
    steps = 20
    theirs = comfy.samplers.calculate_sigmas(plain_sdxl.get_model_object("model_sampling"), core, steps)
    ours = scheduler_node(host, plain_sdxl, steps=steps, shape=shape, terminal="none", base=PLAIN_SIGMA_MAX)
    assert torch.allclose(ours, theirs.float(), rtol=1e-4, atol=1e-6), (ours[:4], theirs[:4])


# --- SNRTScheduler and ztsnr_* on a ZTSNR model ------------------------------------------------------

@pytest.mark.parametrize("shape", list(shapes.SHAPES))
@pytest.mark.parametrize("base", [PLAIN_SIGMA_MAX, 7.0, 40.0, DEFAULT_BASE])
@pytest.mark.parametrize("terminal,first", [("infinite (20000)", 20000.0), ("model", 4518.76)])
def test_scheduler_node_contract_on_a_ztsnr_model(host, noob, shape, base, terminal, first):
    sigmas = scheduler_node(host, noob, steps=28, shape=shape, terminal=terminal, base=base)
    assert len(sigmas) == 29
    assert float(sigmas[0]) == pytest.approx(first, abs=0.01)
    assert int((sigmas > base * (1 + 1e-5)).sum()) == 1
    assert bool((sigmas[1:] < sigmas[:-1]).all())
    assert float(sigmas[-1]) == 0.0


@pytest.mark.parametrize("name", ["ztsnr_karras", "ztsnr_exponential", "ztsnr_beta", "ztsnr_kl_optimal",
                                  "ztsnr_normal", "ztsnr_simple"])
def test_ksampler_names_equal_the_node_at_its_defaults(host, noob, name):
    import comfy.samplers
    via_ksampler = comfy.samplers.calculate_sigmas(noob.get_model_object("model_sampling"), name, 28)
    via_node = scheduler_node(host, noob, shape=name.removeprefix("ztsnr_"))
    assert torch.equal(via_ksampler, via_node)


def test_denoise_keeps_the_tail_like_basic_scheduler(host, noob):
    full = scheduler_node(host, noob, steps=20)
    half = scheduler_node(host, noob, steps=10, denoise=0.5)
    assert torch.equal(half, full[-11:])
    assert len(scheduler_node(host, noob, steps=10, denoise=0.0)) == 0


def test_latent_scales_sigma_hi_by_canvas_side(host, noob):
    latent = {"samples": torch.zeros(1, 4, 256, 256)}  # 2048×2048 pixels on SDXL
    sigmas = scheduler_node(host, noob, latent=latent)
    assert float(sigmas[1]) == pytest.approx(2 * DEFAULT_BASE, rel=1e-5)


def test_terminal_modes_refuse_a_model_not_trained_for_ztsnr(host, plain_sdxl):
    error = host.pack_module("errors").SNRToolkitError
    with pytest.raises(error, match="not Zero Terminal SNR"):
        scheduler_node(host, plain_sdxl, terminal="infinite (20000)")
    import comfy.samplers
    with pytest.raises(error, match="not Zero Terminal SNR"):
        comfy.samplers.calculate_sigmas(plain_sdxl.get_model_object("model_sampling"), "ztsnr_karras", 10)


def test_scheduler_refuses_flow_models_and_zero_steps(host, noob):
    from tools import tiny_models
    error = host.pack_module("errors").SNRToolkitError
    with pytest.raises(error, match="flow-matching"):
        scheduler_node(host, tiny_models.tiny_sd3_medium(num_blocks=2), terminal="none")
    with pytest.raises(ValueError, match="steps must be"):
        scheduler_node(host, noob, steps=0)
