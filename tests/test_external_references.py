"""The pack's formulas against implementations nobody here wrote: diffusers (ZTSNR rescale, CFG
rescale) and scipy (Beta quantiles), test-only references installed in the host venv."""
import numpy
import pytest
import scipy.stats
import torch
from diffusers.guiders.guider_utils import rescale_noise_cfg
from diffusers.schedulers.scheduling_ddim import rescale_zero_terminal_snr

from snr_toolkit.samplers import guidance
from snr_toolkit.schedules import shapes, ztsnr


@pytest.mark.parametrize("start,end", [(0.00085, 0.012), (0.0001, 0.02)])
def test_zero_terminal_snr_betas_are_diffusers(start, end):
    betas = ztsnr.scaled_linear_betas(1000, start, end).double()
    theirs = rescale_zero_terminal_snr(betas.clone())
    ours = ztsnr.enforce_zero_terminal_snr(betas)
    assert float(theirs[-1]) == 1.0 and float(ours[-1]) == 1.0
    assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_zero_terminal_snr_sigmas_follow_diffusers_betas():
    betas = ztsnr.scaled_linear_betas().double()
    alphas_cumprod = torch.cumprod(1 - rescale_zero_terminal_snr(betas.clone()), 0)
    theirs = ((1 - alphas_cumprod[:-1]) / alphas_cumprod[:-1]).sqrt()  # step T has σ = ∞
    ours = ztsnr.zero_terminal_snr_finite_sigmas(ztsnr.sigmas_from_alphas_cumprod(torch.cumprod(1 - betas, 0)))
    assert torch.allclose(ours, theirs, rtol=1e-8)


@pytest.mark.parametrize("phi", [0.0, 0.7, 1.0])
def test_rescale_cfg_is_diffusers_rescale_noise_cfg(phi):
    generator = torch.Generator().manual_seed(1)
    cond = torch.randn(3, 4, 16, 16, generator=generator)
    uncond = torch.randn(3, 4, 16, 16, generator=generator) * 0.5
    guided = uncond + 7.0 * (cond - uncond)
    theirs = rescale_noise_cfg(guided.clone(), cond.clone(), guidance_rescale=phi)
    assert torch.allclose(guidance.rescale_cfg(guided, cond, phi), theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("alpha,beta_", [(0.6, 0.6), (0.5, 0.7), (2.0, 5.0)])
def test_beta_shape_sits_at_scipy_beta_quantiles(alpha, beta_):
    # An identity table (σ = t + 1, log-linear in between is close enough at integer t) makes the
    # timesteps readable: with σ_hi at the table's top, σ_k − 1 ≈ ppf(1 − k/n)·(T − 1).
    table = torch.arange(1, 1001, dtype=torch.float64)
    n = 12
    sigmas = shapes.beta(n, 1.0, 1000.0, alpha, beta_, table=table)
    expected = scipy.stats.beta.ppf(1 - numpy.arange(n) / n, alpha, beta_) * 999
    low = numpy.floor(expected).astype(int)
    w = expected - low
    # Log-linear interpolation between neighbouring integer timesteps, as ComfyUI's model_sampling.sigma.
    reference = numpy.exp((1 - w) * numpy.log(low + 1.0) + w * numpy.log(numpy.minimum(low + 2.0, 1000.0)))
    assert numpy.allclose(sigmas.numpy(), reference, rtol=1e-9)
