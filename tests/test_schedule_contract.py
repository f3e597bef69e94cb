"""Contract of every ZTSNR schedule shape (pure, torch only), parametrised like diffusers' scheduler tests."""
import math

import pytest
import torch

from snr_toolkit.schedules import schedule, shapes, ztsnr

PLAIN = ztsnr.sigmas_from_alphas_cumprod(ztsnr.alphas_cumprod_from_betas(ztsnr.scaled_linear_betas()))
SIGMA_MIN = float(PLAIN[0])
PLAIN_MAX = float(PLAIN[-1])
BASES = [PLAIN_MAX, 7.0, 2 * PLAIN_MAX, 60.0]
TERMINALS = [ztsnr.NOVELAI_TERMINAL_SIGMA, ztsnr.COMFYUI_TERMINAL_SIGMA]


@pytest.mark.parametrize("shape", list(shapes.SHAPES))
@pytest.mark.parametrize("sigma_hi", BASES)
@pytest.mark.parametrize("terminal", TERMINALS)
@pytest.mark.parametrize("steps", [1, 2, 3, 28, 40])
def test_terminal_schedule_contract(shape, sigma_hi, terminal, steps):
    sigmas = schedule.ztsnr_schedule(shape, steps, sigma_hi, SIGMA_MIN, terminal, PLAIN)
    assert sigmas.dtype == torch.float32
    assert len(sigmas) == steps + 1
    assert float(sigmas[0]) == pytest.approx(terminal, rel=1e-6)
    assert int((sigmas > sigma_hi * (1 + 1e-5)).sum()) == 1, "exactly one sigma (the terminal) above σ_hi"
    assert bool((sigmas[1:] < sigmas[:-1]).all()), f"not strictly decreasing: {sigmas.tolist()}"
    assert float(sigmas[-1]) == 0.0
    if steps > 1:
        assert float(sigmas[1]) == pytest.approx(sigma_hi, rel=1e-5), "the shape starts at σ_hi"
        assert float(sigmas[-2]) >= SIGMA_MIN * (1 - 1e-5)


@pytest.mark.parametrize("shape", list(shapes.SHAPES))
@pytest.mark.parametrize("steps", [1, 10, 28])
def test_schedule_without_terminal_starts_at_sigma_hi(shape, steps):
    sigmas = schedule.ztsnr_schedule(shape, steps, 2 * PLAIN_MAX, SIGMA_MIN, None, PLAIN)
    assert len(sigmas) == steps + 1
    assert float(sigmas[0]) == pytest.approx(2 * PLAIN_MAX, rel=1e-5)
    assert bool((sigmas[1:] < sigmas[:-1]).all())


@pytest.mark.parametrize("shape", sorted(shapes.TABLE_SHAPES))
def test_table_shapes_at_the_table_top_are_unstretched(shape):
    raw = shapes.SHAPES[shape](20, SIGMA_MIN, PLAIN_MAX, table=PLAIN)
    stretched = shapes.SHAPES[shape](20, SIGMA_MIN, 2 * PLAIN_MAX, table=PLAIN)
    assert float(raw[0]) == pytest.approx(PLAIN_MAX, rel=1e-9)
    assert float(stretched[0]) == pytest.approx(2 * PLAIN_MAX, rel=1e-9)
    # The stretch is linear in log σ about σ_min: log(σ'/σ_min) = gain · log(σ/σ_min).
    gain = math.log(2 * PLAIN_MAX / SIGMA_MIN) / math.log(PLAIN_MAX / SIGMA_MIN)
    assert torch.allclose(stretched, SIGMA_MIN * (raw / SIGMA_MIN) ** gain, rtol=1e-9)


def test_default_karras_golden_values():
    sigmas = schedule.ztsnr_schedule("karras", 28, 14.614642, SIGMA_MIN, 20000.0, PLAIN)
    # Karras eq. 5 by hand: (14.614642^(1/7) + i/26 · (0.0291675^(1/7) − 14.614642^(1/7)))^7
    golden = [20000.0, 14.614642, 12.450280, 10.566685]
    assert sigmas[:4].tolist() == pytest.approx(golden, rel=1e-5)
    assert float(sigmas[-2]) == pytest.approx(SIGMA_MIN, rel=1e-5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(steps=0), "steps must be"),
    (dict(steps=2.5), "steps must be"),
    (dict(shape="cosine"), "unknown shape"),
    (dict(terminal_sigma=10.0), "must be above σ_hi"),
    (dict(sigma_hi=0.01), "σ_hi > σ_min"),
    (dict(table=None, shape="normal"), "sigma table"),
])
def test_bad_input_is_named(kwargs, match):
    args = dict(shape="karras", steps=10, sigma_hi=PLAIN_MAX, sigma_min=SIGMA_MIN, terminal_sigma=20000.0, table=PLAIN)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        schedule.ztsnr_schedule(**args)


@pytest.mark.parametrize("steps,denoise,total", [(20, 1.0, 20), (20, 0.5, 40), (10, 0.3, 33), (5, 0.0, 0)])
def test_denoise_matches_comfyui_rule(steps, denoise, total):
    assert schedule.denoise_total_steps(steps, denoise) == total


def test_denoise_rejects_out_of_range():
    with pytest.raises(ValueError, match="denoise"):
        schedule.denoise_total_steps(10, 1.5)
    with pytest.raises(ValueError, match="steps"):
        schedule.denoise_total_steps(0, 1.0)
