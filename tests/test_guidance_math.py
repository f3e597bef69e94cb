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


def test_skip_layer_guidance_formula():
    guided, cond, skipped = torch.randn(3, 2, 4, 4).unbind(0)
    assert torch.equal(guidance.skip_layer_guidance(guided, cond, skipped, 2.5), guided + (cond - skipped) * 2.5)


def test_sai_window_over_28_steps():
    assert [i for i in range(28) if guidance.in_step_window(i, 28, 0.01, 0.20)] == [1, 2, 3, 4, 5]


def test_step_index_puts_intermediate_sigmas_in_their_step():
    schedule = [10.0, 5.0, 2.0, 1.0, 0.0]
    assert [guidance.step_index(schedule, s) for s in (10.0, 7.0, 5.0, 3.0, 2.0, 1.0, 0.5)] == [0, 0, 1, 1, 2, 3, 3]


# --- pyramid noise (the spectrum against the published loop: tests/test_noise_spectrum.py) --------

SHAPES = [(2, 4, 32, 32), (2, 16, 24, 40), (2, 16, 5, 16, 16)]


def white(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shape", SHAPES)
def test_pyramid_noise_is_deterministic_per_seed_and_batch_index(shape):
    base = white(shape)
    a = pyramid_noise.pyramid_noise(base, seed=5, offset_strength=0.1)
    b = pyramid_noise.pyramid_noise(base.clone(), seed=5, offset_strength=0.1)
    assert a.shape == shape and torch.equal(a, b)
    alone = pyramid_noise.pyramid_noise(base[1:2], seed=5, offset_strength=0.1, batch_indices=[1])
    assert torch.equal(a[1:2], alone), "sample 1's levels must not depend on the batch it is in"
    assert not torch.equal(a, pyramid_noise.pyramid_noise(base, seed=6, offset_strength=0.1))


@pytest.mark.parametrize("shape", SHAPES)
def test_each_sample_has_zero_mean_and_unit_std(shape):
    noise = pyramid_noise.pyramid_noise(white(shape), seed=2, discount=0.3, offset_strength=0.1)
    for sample in noise:
        assert float(sample.std()) == pytest.approx(1.0, abs=1e-5)
        assert abs(float(sample.mean())) < 0.25


def test_no_levels_and_no_offset_leave_the_white_noise_as_it_is():
    base = white((3, 4, 9, 11)).half()
    assert torch.equal(pyramid_noise.pyramid_noise(base, seed=1, iterations=0).half(), base)


@pytest.mark.parametrize("shape", [(0, 4, 8, 8), (0, 16, 5, 8, 8)])
def test_an_empty_batch_gives_an_empty_noise_of_its_shape(shape):
    # As ComfyUI's own noise does (torch.randn of a 0×… shape); torch.stack of no samples would raise.
    for iterations, offset in ((6, 0.1), (0, 0.0)):
        noise = pyramid_noise.pyramid_noise(torch.zeros(shape, dtype=torch.float16), seed=3, iterations=iterations,
                                            offset_strength=offset, batch_indices=[])
        assert noise.shape == shape and noise.dtype == torch.float32 and noise.numel() == 0
    assert pyramid_noise.pyramid_noise(torch.zeros(shape), seed=3).shape == shape
    with pytest.raises(ValueError, match="discount"):  # the settings are still checked
        pyramid_noise.pyramid_noise(torch.zeros(shape), seed=3, discount=1.0)


@pytest.mark.parametrize("discount", [0.3, 0.5])
def test_low_frequency_energy_exceeds_white_noise_by_the_derived_factor(discount):
    # Before normalising: the white noise and level 0 (a second full-size white draw, weight 1) give the
    # spatial mean over H·W cells variance 2/(H·W). Level i ≥ 1 (grid ≤ H/2ⁱ per side since r ≥ 2)
    # adds ≥ discount^(2i)·(2ⁱ)²/(H·W): a bilinear mean is a convex mix of ≤ H·W/4ⁱ cells. The total
    # variance, renormalised to 1, is at most 1 + 1/(1 − discount²). Levels 1…I always occur while
    # 4^I < H (r < 4), so the mean's variance is at least (2 + Σᵢ (2·discount)^(2i)) / (1 + 1/(1 − d²))
    # times white noise's.
    size, samples = 64, 256
    octaves = [i for i in range(1, 6) if 4**i < size]
    bound = (2 + sum((2 * discount) ** (2 * i) for i in octaves)) / (1 + 1 / (1 - discount**2))
    noise = pyramid_noise.pyramid_noise(white((samples, 4, size, size)), seed=0, iterations=6, discount=discount)
    reference = white((samples, 4, size, size), seed=1)
    ratio = float(noise.mean(dim=(2, 3)).var()) / float(reference.mean(dim=(2, 3)).var())
    print(f"discount {discount}: DC variance ratio {ratio:.2f}, derived lower bound {bound:.2f}")
    assert ratio > bound > 1.15


def test_pyramid_noise_rejects_bad_settings():
    with pytest.raises(ValueError, match="discount"):
        pyramid_noise.pyramid_noise(white((1, 4, 8, 8)), 0, discount=1.0)
    with pytest.raises(ValueError, match="iterations"):
        pyramid_noise.pyramid_noise(white((1, 4, 8, 8)), 0, iterations=-1)
    with pytest.raises(ValueError, match="batch indices"):
        pyramid_noise.pyramid_noise(white((2, 4, 8, 8)), 0, batch_indices=[0])


# --- buckets ----------------------------------------------------------------------------------

def kohya_bucket_resolutions(max_area, min_size=256, max_size=2048, divisible=64):
    """The bucket rule as kohya sd-scripts' make_bucket_resolutions states it (NovelAI's bucketing):
    the square of side ⌊√area / 64⌋·64; then for width = min_size, min_size + 64, … ≤ max_size,
    height = min(max_size, ⌊(area // width) / 64⌋·64), kept with its transpose when height ≥ min_size."""
    resos = {(int(math.sqrt(max_area) // divisible) * divisible,) * 2}
    width = min_size
    while width <= max_size:
        height = min(max_size, int((max_area // width) // divisible) * divisible)
        if height >= min_size:
            resos.add((width, height))
            resos.add((height, width))
        width += divisible
    return resos


@pytest.mark.parametrize("budget", [768 * 768, 1024 * 1024, 1536 * 1536])
def test_buckets_are_kohyas(budget):
    assert set(buckets.bucket_resolutions(budget)) == kohya_bucket_resolutions(budget)


@pytest.mark.parametrize("aspect", [(1, 1), (2, 3), (16, 9), (9, 21), (3, 1)])
def test_nearest_bucket_at_the_default_budget(aspect):
    width, height = buckets.nearest_bucket(*aspect)
    target = math.log(aspect[0] / aspect[1])
    # Brute force over kohya's buckets: nearest in log aspect (2:1 and 1:2 equally far from 1:1).
    candidates = kohya_bucket_resolutions(1024 * 1024)
    best = min(abs(math.log(w / h) - target) for w, h in candidates)
    assert (width, height) in candidates
    assert abs(math.log(width / height) - target) == pytest.approx(best)
    if aspect == (1, 1):
        assert (width, height) == (1024, 1024)


def test_every_bucket_uses_its_budget():
    for width, height in buckets.bucket_resolutions():
        assert width * height <= 1024 * 1024 and width % 64 == 0 and height % 64 == 0
        # kohya's rule picks the largest fitting height for each width (and transposes): so every bucket
        # is maximal along at least one side — neither side can grow by 64 and still fit.
        taller = width * (height + 64) <= 1024 * 1024 and height + 64 <= 2048
        wider = (width + 64) * height <= 1024 * 1024 and width + 64 <= 2048
        assert not (taller and wider), f"{width}×{height} wastes its budget"
