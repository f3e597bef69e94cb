"""Training Objective inside ComfyUI's own Train LoRA node, on tiny real SDXL and SD 3.5 checkpoints loaded by the
core checkpoint loader: the gradient the trainer backpropagates is that of the written-out weighted loss, the
timesteps it draws follow the chosen density (scipy's KS test), its noise has the published pyramid spectrum,
defaults change nothing, the model samples exactly as its input, and a trainer that works differently stops the
run. Written-out losses follow the definitions (Salimans & Ho's v, SD3's velocity, kohya's weights, diffusers'
SD3 weighting), not the pack's code."""
import math
import random

import pytest
import torch

from tools import training
from tools.noise_reference import band_powers, mean_and_error, published_pyramid_noise

SIDE = 16


@pytest.fixture(scope="module")
def sdxl(host):
    model, clip, _ = training.load_tiny_checkpoint(host.nodes, host.base, "sdxl")
    return model, training.conditioning("sdxl", clip)


@pytest.fixture(scope="module")
def sd3(host):
    model, _, _ = training.load_tiny_checkpoint(host.nodes, host.base, "sd3")
    return model, training.conditioning("sd3")


def latents(count, channels=4, seed=0, same=False):
    generator = torch.Generator().manual_seed(seed)
    if same:
        one = torch.randn(channels, SIDE, SIDE, generator=generator)
        return [one.clone() for _ in range(count)]
    return [torch.randn(channels, SIDE, SIDE, generator=generator) for _ in range(count)]


def error_type(host):
    return host.pack_module("errors").SNRToolkitError


# --------------------------------------------------------------------- nothing changes where nothing is set

def test_defaults_return_the_input_and_train_bit_for_bit_as_the_trainer(host, sdxl):
    model, positive = sdxl
    assert training.with_objective(host.nodes, model) is model
    data = latents(4)
    plain_lora, plain_loss = training.train(host.nodes, model, data, positive, batch_size=2, steps=3)
    # A σ window wider than the model's range installs every hook and check, yet changes no draw and no loss.
    hooked = training.with_objective(host.nodes, model, range_unit="sigma", range_min=0.0, range_max=100000.0)
    assert hooked is not model and "outer_sample" in hooked.wrappers
    lora, loss = training.train(host.nodes, hooked, data, positive, batch_size=2, steps=3)
    assert loss == plain_loss
    assert lora.keys() == plain_lora.keys() and all(torch.equal(lora[k], plain_lora[k]) for k in lora)


def test_the_objective_changes_training(host, sdxl):
    model, positive = sdxl
    data = latents(4)
    _, plain = training.train(host.nodes, model, data, positive, batch_size=2, steps=2)
    for settings in (dict(loss_weighting="Min-SNR-γ"), dict(timestep_sampling="logit-normal (SD3)"),
                     dict(pyramid_iterations=6), dict(noise_offset=0.1), dict(ip_noise_gamma=0.1)):
        _, loss = training.train(host.nodes, training.with_objective(host.nodes, model, **settings), data, positive,
                                 batch_size=2, steps=2)
        assert loss != plain, settings


SAMPLING_CASES = {
    "eps": dict(loss_weighting="Min-SNR-γ", timestep_sampling="logit-normal (SD3)", pyramid_iterations=6,
                noise_offset=0.1, ip_noise_gamma=0.1),
    "eps → v-prediction + ZTSNR": dict(prediction="v_prediction", zsnr="on",
                                       loss_weighting="model's standard (ε / v / flow velocity)"),
}


@pytest.mark.parametrize("case", SAMPLING_CASES)
def test_the_model_samples_exactly_as_its_input(host, sdxl, case):
    model, positive = sdxl
    trained = training.with_objective(host.nodes, model, **SAMPLING_CASES[case])
    latent = {"samples": torch.randn(1, 4, SIDE, SIDE, generator=torch.Generator().manual_seed(1))}
    ksampler = host.node("KSampler")()
    for name, run in (
            ("KSampler", lambda m: ksampler.sample(m, 7, 6, 5.0, "dpmpp_2m", "karras", positive, positive, latent)[0]),
            ("SamplerCustomAdvanced", lambda m: training.node_output(host.node("SamplerCustomAdvanced").execute(
                training.node_output(host.node("RandomNoise").execute(7))[0],
                training.node_output(host.node("CFGGuider").execute(m, positive, positive, 5.0))[0],
                training.node_output(host.node("KSamplerSelect").execute("euler_ancestral"))[0],
                training.node_output(host.node("BasicScheduler").execute(m, "normal", 6, 1.0))[0], latent))[0])):
        with torch.inference_mode():
            assert torch.equal(run(trained)["samples"], run(model)["samples"]), name


# --------------------------------------------------------------------- the gradient is the written-out loss

def vp(sigma):
    """α, s of the VP latent αx₀ + sε = x/√(1+σ²) (Salimans & Ho 2022)."""
    return 1 / torch.sqrt(1 + sigma**2), sigma / torch.sqrt(1 + sigma**2)


def per_sample(squared):
    return squared.flatten(1).mean(1)


def eps_mse(x, sigma, out, x0):
    return per_sample(((x - out) / sigma - (x - x0) / sigma) ** 2)


def v_mse(x, sigma, out, x0):
    alpha, s = vp(sigma)
    eps, eps_hat = (x - x0) / sigma, (x - out) / sigma
    return per_sample(((alpha * eps_hat - s * out) - (alpha * eps - s * x0)) ** 2)


def snr_discrete(sigma):
    alphas_cumprod = 1 / (1 + sigma**2)
    return alphas_cumprod / (1 - alphas_cumprod)


def flat(sigma):
    return sigma.reshape(-1)


def written_out(case, x, sigma, out, x0, noise=None):
    """The per-batch loss each case promises, from its definition (σ shaped (B, 1, 1, 1))."""
    from diffusers.training_utils import compute_loss_weighting_for_sd3
    snr = flat(snr_discrete(sigma))
    if case == "eps standard":
        return eps_mse(x, sigma, out, x0).mean()
    if case == "eps min-snr 2":  # kohya apply_snr_weight, ε: loss·min(SNR, γ)/SNR
        return (eps_mse(x, sigma, out, x0) * torch.clamp(snr, max=2.0) / snr).mean()
    if case == "eps debiased":  # kohya apply_debiased_estimation, ε: loss/√min(SNR, 1000)
        return (eps_mse(x, sigma, out, x0) / torch.sqrt(torch.clamp(snr, max=1000.0))).mean()
    if case == "eps ip-noise 0.1":  # Ning et al.: the input carries ε + γξ, the ε target is ComfyUI's noise alone
        return per_sample(((x - out) / sigma - noise) ** 2).mean()
    if case == "v+ztsnr standard":
        return v_mse(x, sigma, out, x0).mean()
    if case == "v+ztsnr min-snr 5":  # kohya apply_snr_weight, v: loss·min(SNR, γ)/(SNR + 1)
        return (v_mse(x, sigma, out, x0) * torch.clamp(snr, max=5.0) / (snr + 1)).mean()
    if case == "flow standard":  # SD3: velocity ε − x₀ of xₜ = (1 − σ)x₀ + σε, the model's x₀ = xₜ − σ·û
        eps = (x - (1 - sigma) * x0) / sigma
        return per_sample(((x - out) / sigma - (eps - x0)) ** 2).mean()
    if case in ("flow sigma_sqrt", "flow cosmap"):  # diffusers' SD3 weighting on its preconditioned x₀ loss
        weights = compute_loss_weighting_for_sd3(case.split()[1], flat(sigma))
        return (weights * per_sample((out - x0) ** 2)).mean()
    raise AssertionError(case)


GRADIENT_CASES = {
    "eps standard": ("sdxl", dict(loss_weighting="model's standard (ε / v / flow velocity)")),
    "eps min-snr 2": ("sdxl", dict(loss_weighting="Min-SNR-γ", min_snr_gamma=2.0)),
    "eps debiased": ("sdxl", dict(loss_weighting="debiased estimation")),
    "eps ip-noise 0.1": ("sdxl", dict(loss_weighting="model's standard (ε / v / flow velocity)", ip_noise_gamma=0.1)),
    "v+ztsnr standard": ("sdxl", dict(prediction="v_prediction", zsnr="on",
                                      loss_weighting="model's standard (ε / v / flow velocity)")),
    "v+ztsnr min-snr 5": ("sdxl", dict(prediction="v_prediction", zsnr="on", loss_weighting="Min-SNR-γ")),
    "flow standard": ("sd3", dict(loss_weighting="model's standard (ε / v / flow velocity)")),
    "flow sigma_sqrt": ("sd3", dict(loss_weighting="SD3 sigma_sqrt")),
    "flow cosmap": ("sd3", dict(loss_weighting="SD3 cosmap")),
}


@pytest.mark.parametrize("case", GRADIENT_CASES)
def test_one_trainer_step_backpropagates_the_written_out_loss(host, request, case):
    family, settings = GRADIENT_CASES[case]
    model, positive = request.getfixturevalue(family)
    spy = training.Spy()
    channels = 16 if family == "sd3" else 4
    data = latents(4, channels, seed=3, same=True)  # one x₀ for every row: the batch order cannot matter
    _, logged = training.train(host.nodes, training.with_objective(host.nodes, spy.install(model), **settings),
                               data, positive, batch_size=4, steps=1, seed=11)
    (call,) = spy.calls
    x, out, grad = call["x"].double(), call["out"].double(), call["grad"].double()
    sigma = call["sigma"].double().reshape(-1, 1, 1, 1)
    assert len(set(flat(sigma).tolist())) == 4, "four different noise levels in the batch"
    x0 = model.model.process_latent_in(data[0][None]).double().expand_as(x)  # the trainer trains in model space
    import comfy_extras.nodes_custom_sampler as custom_sampler
    # The trainer's white noise for this step (seed + 1000·step); ComfyUI runs each sample's conditioning over the
    # whole batch and averages, so the network sees the batch once per conditioning entry, stacked.
    noise = custom_sampler.Noise_RandomNoise(11).generate_noise({"samples": torch.zeros((4,) + x.shape[1:])}).double()
    noise = noise.repeat(x.shape[0] // 4, *[1] * (x.ndim - 1))
    prediction = out.clone().requires_grad_(True)
    expected = written_out(case, x, sigma, prediction, x0, noise)
    (expected_grad,) = torch.autograd.grad(expected, prediction)
    assert logged[0] == pytest.approx(expected.item(), rel=1e-4)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-9 * float(expected_grad.abs().max()))


# --------------------------------------------------------------------- the timesteps follow the density

def discrete_time(model_sampling, sigma):
    """t ∈ [0, 1] of a discrete model's σ: ComfyUI draws σ(999·t) interpolated in log σ from its table."""
    log_sigmas = model_sampling.log_sigmas.double().numpy()
    import numpy
    return numpy.interp(numpy.log(sigma.numpy()), log_sigmas, numpy.arange(len(log_sigmas))) / (len(log_sigmas) - 1)


def flow_time(shift, sigma):
    """Pre-shift t of SD3's σ = αt / (1 + (α − 1)t)."""
    return (sigma / (shift - (shift - 1) * sigma)).numpy()


def mode_cdf(scale):
    """CDF of t = 1 − u − s(cos²(πu/2) − 1 + u), u ~ U[0, 1] (Esser et al. 2024, eq. 20), by inverting on a grid."""
    import numpy
    u = numpy.linspace(0, 1, 20001)
    t = 1 - u - scale * (numpy.cos(numpy.pi * u / 2) ** 2 - 1 + u)
    return lambda x: 1 - numpy.interp(x, t[::-1], u[::-1])


def draws(host, model, positive, settings, steps=40, channels=4, batch_size=4):
    """σ of every sample the trainer noised: steps × batch_size draws. Per-step overhead dominates on these tiny
    models, so a larger batch buys draws cheaply up to about 8 (each forward holds batch_size² samples: one copy
    per conditioning entry); the SD3 test's 8 × 30 costs half its 4 × 60 here."""
    spy = training.Spy()
    training.train(host.nodes, training.with_objective(host.nodes, spy.install(model), **settings),
                   latents(batch_size, channels), positive, batch_size=batch_size, steps=steps, learning_rate=1e-7)
    return spy.sigmas(batch_size)


def test_timesteps_drawn_by_the_trainer_are_logit_normal(host, sdxl):
    from scipy import special, stats
    model, positive = sdxl
    sigmas = draws(host, model, positive, dict(timestep_sampling="logit-normal (SD3)", logit_mean=0.5, logit_std=0.8))
    t = discrete_time(model.get_model_object("model_sampling"), sigmas)
    logits = special.logit(t)
    assert stats.kstest(logits, "norm", args=(0.5, 0.8)).pvalue > 0.01
    assert stats.kstest(logits, "norm", args=(-0.5, 0.8)).pvalue < 1e-4, "the test tells m from −m"
    assert stats.kstest(t, "uniform").pvalue < 1e-4, "the test tells the density from the trainer's uniform"


def test_flow_timesteps_follow_sd3_mode_sampling_and_the_resolution_shift(host, sd3):
    from scipy import stats
    model, positive = sd3
    shift = float(model.get_model_object("model_sampling").shift)
    # Mode(1.29) on the noise time, then 512² on a 1024² family: α = 0.5 on top of the model's shift, i.e.
    # σ = 0.5·shift·t / (1 + (0.5·shift − 1)·t) with t ~ mode.
    sigmas = draws(host, model, positive, dict(timestep_sampling="mode (SD3)", mode_scale=1.29, shift_width=512,
                                               shift_height=512), steps=30, channels=16, batch_size=8)
    assert stats.kstest(flow_time(0.5 * shift, sigmas), mode_cdf(1.29)).pvalue > 0.01
    assert stats.kstest(flow_time(shift, sigmas), mode_cdf(1.29)).pvalue < 1e-3, "the test sees the shift"
    assert stats.kstest(flow_time(0.5 * shift, sigmas), "uniform").pvalue < 1e-3, "the test sees the density"


def test_a_sigma_window_truncates_the_density(host, sdxl):
    from scipy import special, stats
    model, positive = sdxl
    sigmas = draws(host, model, positive, dict(timestep_sampling="logit-normal (SD3)", range_unit="sigma",
                                               range_min=0.5, range_max=5.0))
    assert float(sigmas.min()) >= 0.5 - 1e-6 and float(sigmas.max()) <= 5.0 + 1e-6
    ms = model.get_model_object("model_sampling")
    lo, hi = (special.logit(discrete_time(ms, torch.tensor([s], dtype=torch.float64)))[0] for s in (0.5, 5.0))
    logits = special.logit(discrete_time(ms, sigmas))
    assert stats.kstest(logits, stats.truncnorm(lo, hi).cdf).pvalue > 0.01


# --------------------------------------------------------------------- training noise

def test_training_noise_has_the_published_pyramid_spectrum(host, sdxl):
    model, positive = sdxl
    spy = training.Spy()
    settings = dict(pyramid_iterations=6, pyramid_discount=0.5, noise_offset=0.1)
    zeros = [torch.zeros(4, SIDE, SIDE) for _ in range(4)]  # x₀ = 0, so the noisy input is σ·ε′
    training.train(host.nodes, training.with_objective(host.nodes, spy.install(model), **settings), zeros, positive,
                   batch_size=4, steps=60, learning_rate=1e-7)
    ours = [band_powers(c["x"][:4] / c["sigma"][:4].reshape(-1, 1, 1, 1)).mean(0) for c in spy.calls]
    torch.manual_seed(0)
    rng = random.Random(0)
    # Per-sample normalisation is the published loop run one sample at a time: batches of 1.
    published = [band_powers(published_pyramid_noise((1, 4, SIDE, SIDE), 6, 0.5, 0.1, rng)).mean(0)
                 for _ in range(480)]
    white = [band_powers(torch.randn(4, 4, SIDE, SIDE)).mean(0) for _ in range(60)]
    (mean_ours, err_ours), (mean_pub, err_pub), (mean_white, _) = (mean_and_error(g) for g in (ours, published, white))
    z = (mean_ours - mean_pub) / torch.sqrt(err_ours**2 + err_pub**2)
    print("\nours", mean_ours.tolist(), "\npublished", mean_pub.tolist(), "\nwhite", mean_white.tolist(), "\nz", z.tolist())
    assert bool((z.abs() < 4).all()), f"bands differ beyond sampling error: z = {z.tolist()}"
    assert float(mean_ours[0]) > 4 * float(mean_white[0]), "the DC band carries the offset and the coarse levels"


# --------------------------------------------------------------------- a trainer that works differently stops

def trainer_class(host):
    return host.pack_module("internals.trainer").trainer_sampler_class()


@pytest.mark.parametrize("change", ["loss without loss_fn", "noised with other σ"])
def test_a_trainer_that_trains_differently_stops_the_run(host, sdxl, monkeypatch, change):
    model, positive = sdxl
    cls = trainer_class(host)
    original = cls.fwd_bwd

    def changed(self, model_wrap, batch_sigmas, *args, **kwargs):
        if change == "noised with other σ":
            return original(self, model_wrap, batch_sigmas * 1.01, *args, **kwargs)
        own, self.loss_fn = self.loss_fn, torch.nn.MSELoss()
        try:
            return original(self, model_wrap, batch_sigmas, *args, **kwargs)
        finally:
            self.loss_fn = own
    monkeypatch.setattr(cls, "fwd_bwd", changed)
    trained = training.with_objective(host.nodes, model, loss_weighting="Min-SNR-γ")
    words = "loss no longer goes through" if change == "loss without loss_fn" else "not the ones it drew"
    with pytest.raises(error_type(host), match=f"ComfyUI's trainer .* {words}"):
        training.train(host.nodes, trained, latents(4), positive, batch_size=2, steps=2)


def test_a_node_between_the_objective_and_the_trainer_is_caught(host, sdxl):
    model, positive = sdxl
    trained = training.with_objective(host.nodes, model, loss_weighting="Min-SNR-γ")
    replaced = host.node("SNRTVPrediction").execute(trained, "eps", "off", "NovelAI (20000)", False)[0]
    with pytest.raises(error_type(host), match="Put Training Objective last"):
        training.train(host.nodes, replaced, latents(2), positive, batch_size=2, steps=1)


# --------------------------------------------------------------------- bad input

BAD_INPUTS = {
    "γ 0": ("sdxl", dict(loss_weighting="Min-SNR-γ", min_snr_gamma=0.0), "γ must be > 0"),
    "empty window": ("sdxl", dict(range_min=500.0, range_max=500.0), "empty or inverted"),
    "inverted window": ("sdxl", dict(range_min=800.0, range_max=200.0), "empty or inverted"),
    "window outside the model": ("sdxl", dict(range_unit="sigma", range_min=100.0, range_max=200.0), "lies outside"),
    "logit std 0": ("sdxl", dict(timestep_sampling="logit-normal (SD3)", logit_std=0.0), "std s must be > 0"),
    "ZTSNR with ε": ("sdxl", dict(prediction="eps", zsnr="on"), "ZTSNR needs v-prediction"),
    "ε-only weighting on flow": ("sd3", dict(loss_weighting="Min-SNR-γ"), "defined for ε- and v-prediction"),
    "flow-only weighting on SDXL": ("sdxl", dict(loss_weighting="SD3 cosmap"), "flow-matching"),
    "prediction on flow": ("sd3", dict(prediction="v_prediction"), "ε / v options"),
    "resolution shift on SDXL": ("sdxl", dict(shift_width=512, shift_height=512), "DDPM schedule"),
    "adaptive offset without offset": ("sdxl", dict(adaptive_noise_offset=0.5), "set a noise offset too"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_a_clear_error_and_mutates_nothing(host, request, case):
    from test_host_models import assert_unchanged, snapshot
    family, settings, words = BAD_INPUTS[case]
    model, _ = request.getfixturevalue(family)
    before = snapshot(model)
    with pytest.raises(error_type(host), match=words):
        training.with_objective(host.nodes, model, **settings)
    assert_unchanged(model, before)


def test_a_model_that_is_not_eps_v_or_flow_is_refused(host, sdxl):
    model, _ = sdxl
    edm = host.node("ModelSamplingContinuousEDM")().patch(model, "edm", 120.0, 0.002)[0]
    with pytest.raises(error_type(host), match="neither a discrete ε / v diffusion model"):
        training.with_objective(host.nodes, edm, loss_weighting="Min-SNR-γ")
    assert training.with_objective(host.nodes, edm) is edm  # the trainer's own objective needs nothing of it


def test_a_host_whose_trainer_lacks_the_hooks_is_refused(host, sdxl, monkeypatch):
    model, _ = sdxl
    internals = host.pack_module("internals")
    internals._problems_cached.cache_clear()
    monkeypatch.setattr(trainer_class(host), "fwd_bwd", lambda self, *args, **kwargs: None)
    try:
        with pytest.raises(error_type(host), match="fwd_bwd no longer computes its loss with self.loss_fn"):
            training.with_objective(host.nodes, model, loss_weighting="Min-SNR-γ")
    finally:
        internals._problems_cached.cache_clear()
