"""Pure tests of schedules/ztsnr.py and schedules/resolution.py (torch only)."""
import math

import pytest
import torch

from snr_toolkit.schedules import resolution, ztsnr


def sd_plain_sigmas():
    return ztsnr.sigmas_from_alphas_cumprod(ztsnr.alphas_cumprod_from_betas(ztsnr.scaled_linear_betas()))


def test_plain_sd_table_matches_published_sigma_range():
    sigmas = sd_plain_sigmas()
    assert float(sigmas[-1]) == pytest.approx(14.614642, abs=1e-5)
    assert float(sigmas[0]) == pytest.approx(0.0291675, abs=1e-6)


def test_enforce_zero_terminal_snr_is_lin_et_al_algorithm_1():
    betas = ztsnr.scaled_linear_betas()
    rescaled = ztsnr.enforce_zero_terminal_snr(betas)
    # Algorithm 1 written out independently, in numpy-free float64 arithmetic on lists.
    cumulative, product = [], 1.0
    for beta in betas.tolist():
        product *= 1.0 - beta
        cumulative.append(math.sqrt(product))
    first, last = cumulative[0], cumulative[-1]
    expected_ac = [((s - last) * first / (first - last)) ** 2 for s in cumulative]
    got_ac = ztsnr.alphas_cumprod_from_betas(rescaled)
    assert torch.allclose(got_ac, torch.tensor(expected_ac, dtype=torch.float64), rtol=1e-10, atol=1e-14)
    assert float(got_ac[-1]) == 0.0, "terminal SNR must be exactly zero"
    assert float(rescaled[-1]) == 1.0
    assert float(got_ac[0]) == pytest.approx(1.0 - float(betas[0]), rel=1e-12), "first ᾱ must be unchanged"
    assert bool(((rescaled > 0) & (rescaled <= 1)).all())


def test_terminal_sigma_constants():
    assert ztsnr.COMFYUI_TERMINAL_SIGMA == pytest.approx(4518.76, abs=0.01)
    assert ztsnr.DIFFUSERS_TERMINAL_SIGMA == pytest.approx(4096.0, abs=1e-3)
    assert ztsnr.NOVELAI_TERMINAL_SIGMA == 20000.0


@pytest.mark.parametrize("terminal", [ztsnr.COMFYUI_TERMINAL_SIGMA, ztsnr.NOVELAI_TERMINAL_SIGMA])
def test_zero_terminal_snr_sigmas_pin_and_next_sigma(terminal):
    table = ztsnr.zero_terminal_snr_sigmas(sd_plain_sigmas(), terminal)
    assert len(table) == 1000
    assert float(table[-1]) == terminal
    assert float(table[-2]) == pytest.approx(2254.2, abs=0.5)  # the reference "next sigma ≈ 2254"
    assert float(table[0]) == pytest.approx(float(sd_plain_sigmas()[0]), rel=1e-12)
    assert bool((table[1:] > table[:-1]).all())


def test_terminal_must_exceed_last_finite_sigma():
    with pytest.raises(ValueError, match="must exceed"):
        ztsnr.zero_terminal_snr_sigmas(sd_plain_sigmas(), 1000.0)
    with pytest.raises(ValueError, match="finite positive"):
        ztsnr.zero_terminal_snr_sigmas(sd_plain_sigmas(), float("inf"))


def test_plain_table_is_recovered_from_a_ztsnr_table_and_only_from_one():
    plain = sd_plain_sigmas()
    zsnr = ztsnr.zero_terminal_snr_sigmas(plain).float()
    recovered = ztsnr.plain_sigmas_from_zero_terminal_snr(zsnr, 1000, ztsnr.SD_LINEAR_START, ztsnr.SD_LINEAR_END)
    assert recovered is not None and torch.allclose(recovered, plain)
    other_betas = ztsnr.plain_sigmas_from_zero_terminal_snr(zsnr, 1000, 0.0001, 0.02)
    assert other_betas is None


@pytest.mark.parametrize("width,height,expected", [
    (1024, 1024, 14.614642), (2048, 2048, 29.229284), (832, 1216, 14.614642 * math.sqrt(832 * 1216) / 1024),
    (512, 512, 7.307321),
])
def test_novelai_resolution_rule_on_sdxl(width, height, expected):
    assert resolution.scaled_sigma_max(14.614642, width, height, 1024) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("width,height,base", [(0, 1024, 1024), (1024, -8, 1024), (1024, 1024, 0)])
def test_resolution_rejects_non_positive_sizes(width, height, base):
    with pytest.raises(ValueError, match="positive"):
        resolution.resolution_factor(width, height, base)
