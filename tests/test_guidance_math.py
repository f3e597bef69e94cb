"""Pure tests of samplers/ (guidance, prediction conversions, pyramid noise) and schedules/buckets.py."""
import math

import pytest
import torch

from snr_toolkit.samplers import guidance, prediction, pyramid_noise
from snr_toolkit.schedules import buckets


@pytest.mark.parametrize("sigma", [0.03, 1.0, 14.6, 20000.0])
def test_v_and_x0_round_trip_and_match_the_v_parameterisation(sigma):
    torch.manual_seed(0)
    x0, eps = torch.randn(2, 4, 8, 8).double(), torch.randn(2, 4, 8, 8).double()
    x = x0 + sigma * eps
    alpha, s = 1 / math.sqrt(1 + sigma**2), sigma / math.sqrt(1 + sigma**2)
    v = prediction.v_from_x0(x.double(), x0.double(), sigma)
    assert torch.allclose(v, (alpha * eps - s * x0).double(), rtol=1e-6, atol=1e-6)
    assert torch.allclose(prediction.x0_from_v(x.double(), v, sigma), x0.double(), rtol=1e-6, atol=1e-6)


def test_rescale_cfg_is_diffusers_rescale_noise_cfg():
    torch.manual_seed(1)
    cond, uncond = torch.randn(3, 4, 16, 16), torch.randn(3, 4, 16, 16) * 0.5
    guided = uncond + 7.0 * (cond - uncond)
    # diffusers' rescale_noise_cfg, written out: std over every non-batch dim, unbiased.
    std_text = torch.stack([c.std() for c in cond]).view(3, 1, 1, 1)
    std_cfg = torch.stack([g.std() for g in guided]).view(3, 1, 1, 1)
    expected = 0.7 * guided * (std_text / std_cfg) + 0.3 * guided
    assert torch.allclose(guidance.rescale_cfg(guided, cond, 0.7), expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(guidance.rescale_cfg(guided, cond, 0.0), guided)


def test_skip_layer_guidance_formula():
    guided, cond, skipped = torch.randn(3, 2, 4, 4).unbind(0)
    assert torch.equal(guidance.skip_layer_guidance(guided, cond, skipped, 2.5), guided + (cond - skipped) * 2.5)


def test_sai_window_over_28_steps():
    assert [i for i in range(28) if guidance.in_step_window(i, 28, 0.01, 0.20)] == [1, 2, 3, 4, 5]


def test_step_index_puts_intermediate_sigmas_in_their_step():
    schedule = [10.0, 5.0, 2.0, 1.0, 0.0]
    assert [guidance.step_index(schedule, s) for s in (10.0, 7.0, 5.0, 3.0, 2.0, 1.0, 0.5)] == [0, 0, 1, 1, 2, 3, 3]


# --- pyramid noise ---------------------------------------------------------------------------

SHAPES = [(2, 4, 32, 32), (2, 16, 24, 40), (2, 16, 5, 16, 16)]


@pytest.mark.parametrize("shape", SHAPES)
def test_pyramid_noise_is_deterministic_per_seed_and_batch_index(shape):
    a = pyramid_noise.pyramid_noise(shape, seed=5, offset_strength=0.1)
    b = pyramid_noise.pyramid_noise(shape, seed=5, offset_strength=0.1)
    assert a.shape == shape and torch.equal(a, b)
    alone = pyramid_noise.pyramid_noise((1, *shape[1:]), seed=5, offset_strength=0.1, batch_indices=[1])
    assert torch.equal(a[1:2], alone), "sample 1 must not depend on the batch it is in"
    assert not torch.equal(a, pyramid_noise.pyramid_noise(shape, seed=6, offset_strength=0.1))


@pytest.mark.parametrize("shape", SHAPES)
def test_each_sample_has_zero_mean_and_unit_std(shape):
    noise = pyramid_noise.pyramid_noise(shape, seed=2, discount=0.3, offset_strength=0.1)
    for sample in noise:
        assert float(sample.std()) == pytest.approx(1.0, abs=1e-5)
        assert abs(float(sample.mean())) < 0.25


def test_white_level_is_comfyui_noise():
    shape = (3, 4, 16, 16)
    comfy_style = torch.randn(shape, generator=torch.Generator().manual_seed(9))  # prepare_noise, no batch_index
    white = pyramid_noise.pyramid_noise(shape, seed=9, iterations=1)
    for k in range(3):
        assert torch.allclose(white[k], comfy_style[k] / comfy_style[k].std(), atol=1e-6)


@pytest.mark.parametrize("discount", [0.3, 0.5])
def test_low_frequency_energy_exceeds_white_noise_by_the_derived_factor(discount):
    # The spatial mean of white noise over H·W cells has variance 1/(H·W). Octave i (grid ≤ H/2ⁱ since
    # r ≥ 2) adds variance ≥ discount^(2i)·(2ⁱ)²/(H·W) to it, while the total variance, renormalised to 1,
    # grew by at most 1/(1 − discount²). Octaves 1…I always occur while 4^I < H (r < 4), so the mean's
    # variance is at least (1 + Σᵢ (2·discount)^(2i))·(1 − discount²) times white noise's.
    size, samples = 64, 256
    octaves = [i for i in range(1, 6) if 4**i < size]
    bound = (1 + sum((2 * discount) ** (2 * i) for i in octaves)) * (1 - discount**2)
    noise = pyramid_noise.pyramid_noise((samples, 4, size, size), seed=0, iterations=6, discount=discount)
    white = torch.randn(samples, 4, size, size, generator=torch.Generator().manual_seed(1))
    ratio = float(noise.mean(dim=(2, 3)).var()) / float(white.mean(dim=(2, 3)).var())
    print(f"discount {discount}: DC variance ratio {ratio:.2f}, derived lower bound {bound:.2f}")
    assert ratio > bound > 1.2


def test_pyramid_noise_rejects_bad_settings():
    with pytest.raises(ValueError, match="discount"):
        pyramid_noise.pyramid_noise((1, 4, 8, 8), 0, discount=1.0)
    with pytest.raises(ValueError, match="iterations"):
        pyramid_noise.pyramid_noise((1, 4, 8, 8), 0, iterations=0)


# --- buckets ----------------------------------------------------------------------------------

@pytest.mark.parametrize("aspect", [(1, 1), (2, 3), (16, 9), (9, 21)])
def test_nearest_bucket_at_the_default_budget(aspect):
    width, height = buckets.nearest_bucket(*aspect)
    assert width % 64 == 0 and height % 64 == 0
    assert width * height <= 1024 * 1024
    target = math.log(aspect[0] / aspect[1])
    # Brute force over every multiple-of-64 size within the budget and kohya's side limits.
    candidates = [(w, h) for w in range(256, 2049, 64) for h in range(256, 2049, 64) if w * h <= 1024 * 1024
                  and (w, h) in buckets.bucket_resolutions()]
    best = min(abs(math.log(w / h) - target) for w, h in candidates)
    assert abs(math.log(width / height) - target) == pytest.approx(best)
    if aspect == (1, 1):
        assert (width, height) == (1024, 1024)


def test_every_bucket_uses_its_budget():
    for width, height in buckets.bucket_resolutions():
        assert width * height <= 1024 * 1024
        # No bucket could grow by one 64-step in height and still fit (kohya's largest-height rule).
        assert width * (height + 64) > 1024 * 1024 or height + 64 > 2048 or (height, width) in buckets.bucket_resolutions()
