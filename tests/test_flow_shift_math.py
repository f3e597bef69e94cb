"""Pure tests of schedules/flow_shift.py (the SD3 paper's resolution shift, Flux-type μ, the families' own
rules) against the published formulas written out here and against diffusers' flow-matching scheduler, a
test-only reference installed in the host venv."""
import math

import pytest
import torch

from snr_toolkit.schedules import flow_shift, resolution

GRID = [i / 20 for i in range(1, 20)]


@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0, 8.0])
def test_sd3_shift_scales_the_ve_sigma_by_alpha(alpha):
    # Esser et al. 2024 §5.3.2: t_m = α t_n / (1 + (α − 1) t_n); then t_m/(1 − t_m) = α · t_n/(1 − t_n).
    for t in GRID:
        shifted = flow_shift.shifted_time(t, alpha)
        assert flow_shift.ve_sigma(shifted) == pytest.approx(alpha * flow_shift.ve_sigma(t), rel=1e-12)


def test_flux_mu_is_the_same_curve_with_alpha_e_to_the_mu():
    for mu in (-0.5, 0.5, 1.15, 2.37):
        for t in GRID:
            assert flow_shift.flux_time(t, mu) == pytest.approx(flow_shift.shifted_time(t, math.exp(mu)), rel=1e-12)


def test_doubling_the_side_doubles_sigma_like_novelai():
    # α = √(m/n) in pixel counts equals NovelAI's side ratio √(w·h) / base side.
    assert flow_shift.sd3_resolution_factor(2048 * 2048, 1024 * 1024) == pytest.approx(2.0)
    assert flow_shift.sd3_resolution_factor(832 * 1216, 1024 ** 2) == pytest.approx(
        resolution.resolution_factor(832, 1216, 1024), rel=1e-12)
    with pytest.raises(ValueError, match="positive"):
        flow_shift.sd3_resolution_factor(0, 1024 ** 2)


def test_scaled_shift_composes_in_both_forms():
    assert flow_shift.scaled_shift(3.0, "alpha", 2.0) == pytest.approx(6.0)
    assert flow_shift.scaled_shift(1.15, "mu", 2.0) == pytest.approx(1.15 + math.log(2.0))
    # Two scalings are one scaling by the product, in either form.
    twice = flow_shift.scaled_shift(flow_shift.scaled_shift(5.0, "alpha", 1.5), "alpha", 0.5)
    assert twice == pytest.approx(flow_shift.scaled_shift(5.0, "alpha", 0.75))
    assert flow_shift.log_shift(math.e ** 2, "alpha") == pytest.approx(2.0)
    with pytest.raises(ValueError, match="positive"):
        flow_shift.scaled_shift(3.0, "alpha", 0.0)


def test_flux_rule_passes_through_its_published_points():
    rule = flow_shift.FLUX_RULE
    assert flow_shift.linear_mu(256, **rule) == pytest.approx(0.5)
    assert flow_shift.linear_mu(4096, **rule) == pytest.approx(1.15)
    assert flow_shift.family_rule_mu("flux", 1024, 1024) == pytest.approx(1.15)  # 1024² = 4096 tokens
    assert flow_shift.family_rule_mu("flux", 512, 512) == pytest.approx(0.5 + 768 * 0.65 / 3840)


def test_flux2_rule_gives_comfyuis_configured_mu_at_1024_and_50_steps():
    configured = flow_shift.FLUX2_CONFIGURED_STEPS
    assert flow_shift.family_rule_mu("flux2", 1024, 1024, steps=configured) == pytest.approx(2.02, abs=0.005)
    assert flow_shift.flux2_empirical_mu(8192, 4) == pytest.approx(0.00016927 * 8192 + 0.45666666)  # steps ignored


def test_flux2_rule_uses_the_steps_it_is_given():
    # Below 4300 tokens BFL's rule interpolates between its 10- and 200-step lines (compute_empirical_mu).
    tokens = 4096
    m_10, m_200 = 8.73809524e-05 * tokens + 1.89833333, 0.00016927 * tokens + 0.45666666
    for steps in (10, 20, 28, 50, 200):
        expected = m_10 + (m_200 - m_10) * (steps - 10) / 190
        assert flow_shift.family_rule_mu("flux2", 1024, 1024, steps=steps) == pytest.approx(expected, rel=1e-9)
    assert flow_shift.family_rule_mu("flux2", 1024, 1024) == flow_shift.family_rule_mu("flux2", 1024, 1024, steps=20)
    assert flow_shift.family_rule_mu("flux2", 1024, 1024, steps=20) > flow_shift.family_rule_mu("flux2", 1024, 1024,
                                                                                                  steps=50) + 0.15
    # Above 4300 tokens (e.g. 1536²) the step count does not enter.
    assert flow_shift.family_rule_mu("flux2", 1536, 1536, steps=4) == flow_shift.family_rule_mu("flux2", 1536, 1536,
                                                                                                 steps=50)
    with pytest.raises(ValueError, match="step count"):
        flow_shift.family_rule_mu("flux2", 1024, 1024, steps=0)


def test_ltxv_rule_needs_the_latent_and_passes_through_its_points():
    with pytest.raises(ValueError, match="latent"):
        flow_shift.family_rule_mu("ltxv", 768, 512)
    assert flow_shift.family_rule_mu("ltxv", 0, 0, 1024) == pytest.approx(0.95)
    assert flow_shift.family_rule_mu("ltxv", 0, 0, 4096) == pytest.approx(2.05)
    # ComfyUI's configured LTX-Video μ 2.37 is its rule at 768×512, 97 frames (24·16·13 latent tokens).
    assert flow_shift.family_rule_mu("ltxv", 0, 0, 24 * 16 * 13) == pytest.approx(2.37, abs=0.005)


def test_flow_base_canvases_are_per_family_sides():
    assert resolution.BASE_SIDE_BY_FAMILY["SD3"] == 1024
    assert resolution.BASE_SIDE_BY_FAMILY["Wan 2.1"] == pytest.approx(960.0)  # 1280×720
    assert resolution.BASE_SIDE_BY_FAMILY["SDXL"] == 1024 and resolution.BASE_SIDE_BY_FAMILY["SD1"] == 512
    latent = {"samples": torch.zeros(1, 16, 5, 90, 160)}  # Wan: T 5, 720×1280 frames at 8 pixels per cell
    assert resolution.latent_pixel_size(latent, 8) == (1280, 720)
    assert resolution.latent_tokens(latent) == 5 * 90 * 160


def test_every_flow_base_canvas_names_its_published_source_or_is_marked_unverified():
    assert set(resolution.FLOW_BASE_SOURCES) == set(resolution.FLOW_BASE_CANVAS)
    assert resolution.UNVERIFIED_BASE == ("Flux Schnell", "Lumina 2", "Qwen-Image")
    for family, (width, height) in resolution.FLOW_BASE_CANVAS.items():
        source = resolution.FLOW_BASE_SOURCES[family]
        if family not in resolution.UNVERIFIED_BASE:  # the cited source states the canvas the table uses
            assert str(width) in source and str(height) in source, family


# --- against diffusers ------------------------------------------------------------------------------

def test_static_shift_matches_diffusers_flow_match_scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler
    unshifted = torch.linspace(1.0, 1 / 28, 28, dtype=torch.float64)
    for shift in (3.0, 6.0):  # SD3's config at its base canvas, and the same model at twice the side
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
        scheduler.set_timesteps(sigmas=unshifted.float().numpy())  # diffusers shifts the sigmas it is given
        ours = torch.tensor([flow_shift.shifted_time(float(t), shift) for t in unshifted.float()], dtype=torch.float64)
        assert torch.allclose(scheduler.sigmas[:-1].double(), ours, rtol=1e-5)
    # The node's rule on SD3 at 2048² (α = 3 × 2) is diffusers' shift-6 schedule.
    assert flow_shift.scaled_shift(3.0, "alpha", flow_shift.sd3_resolution_factor(2048 ** 2, 1024 ** 2)) == pytest.approx(6.0)


@pytest.mark.parametrize("width,height", [(512, 512), (1024, 1024), (1536, 1024), (2048, 2048)])
def test_flux_rule_and_time_shift_match_diffusers(width, height):
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift
    tokens = (width // 16) * (height // 16)
    mu = calculate_shift(tokens, 256, 4096, 0.5, 1.15)
    assert flow_shift.family_rule_mu("flux", width, height) == pytest.approx(mu, rel=1e-12)
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                base_image_seq_len=256, max_image_seq_len=4096)
    grid = torch.linspace(1.0, 1 / 28, 28, dtype=torch.float64)
    scheduler.set_timesteps(sigmas=grid.float().numpy(), mu=mu)
    ours = torch.tensor([flow_shift.flux_time(float(t), mu) for t in grid.float()], dtype=torch.float64)
    assert torch.allclose(scheduler.sigmas[:-1].double(), ours, rtol=1e-5)


def test_resolution_factor_on_mu_is_diffusers_dynamic_shift_on_alpha():
    """diffusers applies a dynamic μ as exp(μ) times σ/(1−σ) (its time_shift): μ + ln α is α × that."""
    from diffusers import FlowMatchEulerDiscreteScheduler
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    grid = torch.linspace(0.95, 0.05, 10, dtype=torch.float64)
    base = scheduler.time_shift(1.15, 1.0, grid)
    scaled = scheduler.time_shift(flow_shift.scaled_shift(1.15, "mu", 2.0), 1.0, grid)
    assert torch.allclose(scaled / (1 - scaled), 2 * base / (1 - base), rtol=1e-10)


def test_ideal_flow_denoiser_is_the_ve_denoiser_on_the_rescaled_input():
    """x_t = (1 − t)x₀ + tε is x₀ + σ_VE ε scaled by 1 − t, so both posterior means agree; at t = 1 it is
    the prior mean, where the VE form cannot be evaluated."""
    from tools.ideal_model import GaussianMixture, mode_means
    mixture = GaussianMixture(mode_means(4, 6, 6), 0.4)
    generator = torch.Generator().manual_seed(0)
    x0 = mixture.sample(5, generator)
    for t in (0.05, 0.3, 0.7, 0.95):
        xt = (1 - t) * x0 + t * torch.randn(x0.shape, generator=generator)
        ve_form = mixture.denoise(xt.double() / (1 - t), t / (1 - t))
        assert torch.allclose(mixture.denoise_flow(xt.double(), t), ve_form, atol=1e-9)
    prior_mean = (mixture.weights[:, None, None, None] * mixture.means).sum(0)
    assert torch.allclose(mixture.denoise_flow(torch.randn(3, 4, 6, 6, generator=generator), 1.0).float(),
                          prior_mean.expand(3, -1, -1, -1), atol=1e-6)
