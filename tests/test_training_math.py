"""Training objective maths (pure): SNR and loss weights against diffusers and kohya's published formulas, the
timestep densities against diffusers and scipy, training noise against kohya's formulas, bad settings refused."""
import math

import pytest
import torch

from snr_toolkit.samplers import loss_weighting as lw
from snr_toolkit.samplers import timestep_sampling as ts
from snr_toolkit.samplers import training_noise as tn
from snr_toolkit.schedules import ztsnr


@pytest.fixture(scope="module")
def sdxl_scheduler():
    from diffusers import DDPMScheduler
    return DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


def comfy_sigmas(scheduler):
    """ComfyUI's σ of a DDPM timestep: √((1 − ᾱ)/ᾱ)."""
    return ztsnr.sigmas_from_alphas_cumprod(scheduler.alphas_cumprod.double())


def test_snr_equals_diffusers_compute_snr(sdxl_scheduler):
    from diffusers.training_utils import compute_snr
    timesteps = torch.arange(0, 1000, 37)
    sigma = comfy_sigmas(sdxl_scheduler)[timesteps]
    torch.testing.assert_close(lw.snr(sigma, "eps").float(), compute_snr(sdxl_scheduler, timesteps), rtol=1e-5, atol=0)


def batch(seed, sigma_shape):
    generator = torch.Generator().manual_seed(seed)
    shape = (sigma_shape, 4, 8, 8)
    return [torch.randn(shape, generator=generator, dtype=torch.float64) for _ in range(3)]


def mse(a, b):
    return ((a - b) ** 2).flatten(1).mean(1)


@pytest.mark.parametrize("timesteps", [[0, 10, 200, 500, 999], [3, 700, 900, 998, 999]])
def test_standard_weights_turn_the_x0_error_into_the_eps_and_v_errors(sdxl_scheduler, timesteps):
    timesteps = torch.tensor(timesteps)
    sigma = comfy_sigmas(sdxl_scheduler)[timesteps]
    x0, eps, x0_hat = batch(0, len(timesteps))
    s = sigma.reshape(-1, 1, 1, 1)
    x = x0 + s * eps                                   # ComfyUI's discrete noising
    eps_hat = (x - x0_hat) / s                         # an ε model whose x₀ guess is x0_hat
    x0_loss = mse(x0_hat, x0)
    torch.testing.assert_close(lw.x0_loss_weight(sigma, "eps", "standard") * x0_loss, mse(eps_hat, eps))
    # v: diffusers' velocity of the VP latent √ᾱ·x₀ + √(1−ᾱ)·ε, and the v the same x₀ guess implies.
    alpha_bar = sdxl_scheduler.alphas_cumprod.double()[timesteps].reshape(-1, 1, 1, 1)
    v = sdxl_scheduler.get_velocity(x0, eps, timesteps)
    v_hat = alpha_bar.sqrt() * eps_hat - (1 - alpha_bar).sqrt() * x0_hat
    torch.testing.assert_close(lw.x0_loss_weight(sigma, "v", "standard") * x0_loss, mse(v_hat, v))


def kohya_min_snr(loss, snr, gamma, v_prediction):
    """kohya sd-scripts `apply_snr_weight`, as published."""
    min_snr_gamma = torch.minimum(snr, torch.full_like(snr, gamma))
    return loss * (min_snr_gamma / (snr + 1) if v_prediction else min_snr_gamma / snr)


def kohya_debiased(loss, snr, v_prediction):
    """kohya sd-scripts `apply_debiased_estimation`, as published."""
    snr = torch.minimum(snr, torch.ones_like(snr) * 1000)
    return loss * (1 / (snr + 1) if v_prediction else 1 / torch.sqrt(snr))


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_min_snr_and_debiased_weights_equal_kohya(sdxl_scheduler, prediction):
    from diffusers.training_utils import compute_snr
    timesteps = torch.tensor([0, 1, 50, 300, 600, 999])
    sigma = comfy_sigmas(sdxl_scheduler)[timesteps]
    snr = compute_snr(sdxl_scheduler, timesteps).double()
    x0, eps, x0_hat = batch(1, len(timesteps))
    s = sigma.reshape(-1, 1, 1, 1)
    x = x0 + s * eps
    eps_hat = (x - x0_hat) / s
    alpha_bar = sdxl_scheduler.alphas_cumprod.double()[timesteps].reshape(-1, 1, 1, 1)
    v_hat = alpha_bar.sqrt() * eps_hat - (1 - alpha_bar).sqrt() * x0_hat
    target_loss = mse(eps_hat, eps) if prediction == "eps" else mse(v_hat, sdxl_scheduler.get_velocity(x0, eps, timesteps))
    x0_loss = mse(x0_hat, x0)
    is_v = prediction == "v"
    for gamma in (1.0, 5.0):
        torch.testing.assert_close(lw.x0_loss_weight(sigma, prediction, "min_snr", gamma) * x0_loss,
                                   kohya_min_snr(target_loss, snr, gamma, is_v), rtol=2e-5, atol=0)
    torch.testing.assert_close(lw.x0_loss_weight(sigma, prediction, "debiased") * x0_loss,
                               kohya_debiased(target_loss, snr, is_v), rtol=2e-5, atol=0)


def test_min_snr_on_the_x0_error_is_min_snr_gamma():
    sigma = torch.tensor([0.03, 0.3, 1.0, 3.0, 14.6], dtype=torch.float64)
    expected = torch.minimum(sigma**-2, torch.full_like(sigma, 5.0))  # Hang et al. 2023, x₀ form
    for prediction in ("eps", "v"):
        torch.testing.assert_close(lw.x0_loss_weight(sigma, prediction, "min_snr", 5.0), expected)


def test_flow_weights_equal_diffusers_sd3_weighting_and_the_velocity_error():
    from diffusers.training_utils import compute_loss_weighting_for_sd3
    sigma = torch.tensor([0.02, 0.2, 0.5, 0.8, 0.99], dtype=torch.float64)
    for scheme in ("sigma_sqrt", "cosmap"):
        torch.testing.assert_close(lw.x0_loss_weight(sigma, "flow", scheme),
                                   compute_loss_weighting_for_sd3(scheme, sigma).double())
    x0, eps, x0_hat = batch(2, len(sigma))
    s = sigma.reshape(-1, 1, 1, 1)
    x = (1 - s) * x0 + s * eps                         # rectified flow (SD3, ComfyUI's CONST)
    u_hat = (x - x0_hat) / s                           # CONST: x₀ = x − σ·u
    torch.testing.assert_close(lw.x0_loss_weight(sigma, "flow", "standard") * mse(x0_hat, x0), mse(u_hat, eps - x0))
    torch.testing.assert_close(lw.snr(sigma, "flow"), ((1 - sigma) / sigma) ** 2)


@pytest.mark.parametrize("weighting,prediction,gamma,words", [
    ("min_snr", "eps", 0.0, "γ must be > 0"), ("min_snr", "eps", -1.0, "γ must be > 0"),
    ("min_snr", "flow", 5.0, "ε- and v-prediction"), ("debiased", "flow", 5.0, "ε- and v-prediction"),
    ("cosmap", "eps", 5.0, "flow-matching"), ("sigma_sqrt", "v", 5.0, "flow-matching"), ("nope", "eps", 5.0, "unknown"),
])
def test_undefined_weightings_are_refused(weighting, prediction, gamma, words):
    with pytest.raises(ValueError, match=words):
        lw.x0_loss_weight(torch.tensor([1.0]), prediction, weighting, gamma)


# --------------------------------------------------------------------- timestep densities

def test_mode_sampling_equals_diffusers_on_the_same_uniform_draws():
    from diffusers.training_utils import compute_density_for_timestep_sampling
    theirs = compute_density_for_timestep_sampling("mode", 512, mode_scale=1.29,
                                                   generator=torch.Generator().manual_seed(5))
    uniform = torch.rand(512, generator=torch.Generator().manual_seed(5))
    ours = torch.tensor([ts.mode_time(float(u), 1.29) for u in uniform], dtype=torch.float32)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_logit_normal_from_uniform_draws_is_logit_normal_and_mirrors_diffusers():
    from diffusers.training_utils import compute_density_for_timestep_sampling
    from scipy import special, stats
    density = ts.TimestepDensity("logit_normal", logit_mean=0.7, logit_std=0.6)
    uniform = torch.rand(4000, generator=torch.Generator().manual_seed(2)).tolist()
    t = [density(p) for p in uniform]
    assert stats.kstest(special.logit(t), "norm", args=(0.7, 0.6)).pvalue > 0.01
    assert stats.kstest(special.logit(t), "norm", args=(-0.7, 0.6)).pvalue < 1e-6
    # diffusers draws u ~ logit-normal(logit_mean) and trains at σ ≈ 1 − u: its logit_mean is −m on the noise time.
    u = compute_density_for_timestep_sampling("logit_normal", 4000, logit_mean=-0.7, logit_std=0.6,
                                              generator=torch.Generator().manual_seed(3))
    assert stats.ks_2samp(t, 1 - u.numpy()).pvalue > 0.01


def test_uniform_is_the_trainers_own_draw():
    density = ts.TimestepDensity()
    assert density.is_trainers_own
    assert all(density(p) == 1.0 - p for p in (0.0, 0.25, 0.5, 0.999))


def test_a_window_truncates_the_density_keeping_its_shape():
    from scipy import special, stats
    base = ts.TimestepDensity("logit_normal", 0.0, 1.0)
    lo, hi = 0.3, 0.6  # noise-time window; G decreases, so the upper time bounds the lower p
    window = base.windowed(ts.invert_decreasing(base.time, hi), ts.invert_decreasing(base.time, lo))
    t = [window(p) for p in torch.rand(3000, generator=torch.Generator().manual_seed(4)).tolist()]
    assert min(t) >= lo - 1e-9 and max(t) <= hi + 1e-9
    a, b = special.logit(lo), special.logit(hi)
    assert stats.kstest(special.logit(t), stats.truncnorm(a, b).cdf).pvalue > 0.01


@pytest.mark.parametrize("density,std,scale,words", [
    ("logit_normal", 0.0, 1.29, "std s must be > 0"), ("logit_normal", -1.0, 1.29, "std s must be > 0"),
    ("mode", 1.0, 2.0, "mode scale"), ("mode", 1.0, -1.5, "mode scale"), ("beta", 1.0, 1.0, "unknown"),
])
def test_undefined_densities_are_refused(density, std, scale, words):
    with pytest.raises(ValueError, match=words):
        ts.TimestepDensity(density, 0.0, std, scale)


def test_mode_sampling_is_monotone_up_to_its_published_bound():
    grid = [i / 1000 for i in range(1001)]
    values = [ts.mode_time(p, ts.MODE_SCALE_MAX) for p in grid]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert ts.MODE_SCALE_MAX == pytest.approx(2 / (math.pi - 2))


# --------------------------------------------------------------------- training noise

def test_offset_noise_is_kohyas_apply_noise_offset():
    latents = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(0)) + 0.5
    noise = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    ours = tn.offset_noise(noise, latents, 0.1, 0.3, torch.Generator().manual_seed(9))
    draw = torch.randn((3, 4, 1, 1), generator=torch.Generator().manual_seed(9))
    # kohya apply_noise_offset: offset + adaptive·|per-channel mean|, clamped at 0, times randn(B, C, 1, 1)
    strength = torch.clamp(0.1 + 0.3 * torch.abs(latents.mean(dim=(2, 3), keepdim=True)), 0.0, None)
    torch.testing.assert_close(ours, noise + strength * draw)


def test_pyramid_training_noise_is_the_pyramid_of_the_offset_noise():
    from snr_toolkit.samplers.pyramid_noise import pyramid_octaves, sample_generator
    latents = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    ours = tn.training_noise(noise, latents, seed=12, offset=0.1, iterations=6, discount=0.5)
    offset = tn.offset_noise(noise, latents, 0.1, 0.0, torch.Generator().manual_seed(12))
    for j in range(2):
        torch.testing.assert_close(ours[j], pyramid_octaves(offset[j], sample_generator(12, j), 6, 0.5))
        assert float(ours[j].std()) == pytest.approx(1.0, abs=1e-5)
    assert torch.equal(tn.training_noise(noise, latents, seed=12), noise)


def test_input_perturbation_moves_each_target_as_its_definition_says():
    sigma = torch.tensor([0.1, 1.0, 7.0], dtype=torch.float64)
    x0, eps, xi = batch(3, 3)
    s = sigma.reshape(-1, 1, 1, 1)
    push = 0.1 * xi
    # ε model (Ning et al.): input x₀ + σ(ε + γξ), target ε, so the x₀ the target implies is x − σε.
    x = x0 + s * (eps + push)
    gain = tn.perturbation_target_gain(sigma, "eps").reshape(-1, 1, 1, 1)
    torch.testing.assert_close(x - s * eps, x0 + gain * push)
    # v model: target v = αε − s_vp·x₀ (Salimans & Ho) of the clean pair; ComfyUI's x₀ from v is x/(1+σ²) − v·σ/√(1+σ²).
    alpha, s_vp = 1 / torch.sqrt(1 + s**2), s / torch.sqrt(1 + s**2)
    v = alpha * eps - s_vp * x0
    gain = tn.perturbation_target_gain(sigma, "v").reshape(-1, 1, 1, 1)
    torch.testing.assert_close(x / (1 + s**2) - v * s_vp, x0 + gain * push)
    # flow: input (1 − σ)x₀ + σ(ε + γξ), velocity target ε − x₀, x₀ = x − σ·u.
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64).reshape(-1, 1, 1, 1)
    x = (1 - t) * x0 + t * (eps + push)
    gain = tn.perturbation_target_gain(t.reshape(-1), "flow").reshape(-1, 1, 1, 1)
    torch.testing.assert_close(x - t * (eps - x0), x0 + gain * push)


@pytest.mark.parametrize("settings,words", [
    (dict(offset=-0.1), "noise offset must be ≥ 0"), (dict(adaptive_offset=0.5), "set a noise offset too"),
    (dict(iterations=-1), "iterations must be ≥ 0"), (dict(discount=1.0), "discount must be within"),
    (dict(ip_gamma=-0.1), "γ must be ≥ 0"),
])
def test_undefined_noise_settings_are_refused(settings, words):
    values = {**dict(offset=0.0, adaptive_offset=0.0, iterations=0, discount=0.3, ip_gamma=0.0), **settings}
    with pytest.raises(ValueError, match=words):
        tn.check_settings(**values)
