"""Schedule shapes: n sigmas from σ_hi down to σ_min, strictly decreasing, no trailing zero.

Two kinds. Parametric shapes take σ_hi directly. Table shapes pick (fractional) timesteps on
the model's plain, non-ZTSNR sigma table, read σ by log-linear interpolation, then stretch
log σ so that the table's top lands on σ_hi while σ_min stays put; with σ_hi equal to the
table's top they are the model's own schedule. Pure torch, never imports comfy.
"""
from __future__ import annotations

import math
from typing import Callable

import torch


def _check(n: int, sigma_min: float, sigma_hi: float) -> None:
    if n < 1:
        raise ValueError(f"a schedule shape needs at least 1 sigma, got n={n}")
    if not 0 < sigma_min < sigma_hi:
        raise ValueError(f"need 0 < sigma_min < sigma_hi, got sigma_min={sigma_min}, sigma_hi={sigma_hi}")


def _ramp(n: int) -> torch.Tensor:
    """0 … 1 in n points; a single point sits at 0 (the top of the schedule)."""
    return torch.linspace(0.0, 1.0, n, dtype=torch.float64) if n > 1 else torch.zeros(1, dtype=torch.float64)


def karras(n: int, sigma_min: float, sigma_hi: float, rho: float = 7.0, table=None) -> torch.Tensor:
    """σ_i = (σ_hi^(1/ρ) + i/(n−1)·(σ_min^(1/ρ) − σ_hi^(1/ρ)))^ρ (Karras et al. 2022, eq. 5)."""
    _check(n, sigma_min, sigma_hi)
    lo, hi = sigma_min ** (1.0 / rho), sigma_hi ** (1.0 / rho)
    return (hi + _ramp(n) * (lo - hi)) ** rho


def exponential(n: int, sigma_min: float, sigma_hi: float, table=None) -> torch.Tensor:
    """Uniform in log σ (k-diffusion `get_sigmas_exponential`)."""
    _check(n, sigma_min, sigma_hi)
    return torch.exp(math.log(sigma_hi) + _ramp(n) * (math.log(sigma_min) - math.log(sigma_hi)))


def polyexponential(n: int, sigma_min: float, sigma_hi: float, rho: float = 1.0, table=None) -> torch.Tensor:
    """log σ follows a ρ-th power ramp (k-diffusion `get_sigmas_polyexponential`); ρ = 1 is exponential."""
    _check(n, sigma_min, sigma_hi)
    ramp = (1.0 - _ramp(n)) ** rho
    return torch.exp(math.log(sigma_min) + ramp * (math.log(sigma_hi) - math.log(sigma_min)))


def kl_optimal(n: int, sigma_min: float, sigma_hi: float, table=None) -> torch.Tensor:
    """Uniform in arctan σ (Sabour et al. 2024, "Align Your Steps", KL-optimal schedule)."""
    _check(n, sigma_min, sigma_hi)
    ramp = _ramp(n)
    return torch.tan((1.0 - ramp) * math.atan(sigma_hi) + ramp * math.atan(sigma_min))


def linear_quadratic(n: int, sigma_min: float, sigma_hi: float, threshold_noise: float = 0.025,
                     table=None) -> torch.Tensor:
    """Genmo Mochi's schedule: linear in t for the first half up to `threshold_noise`, quadratic
    after; the unit-interval noise level u is mapped to σ_min + u·(σ_hi − σ_min)."""
    _check(n, sigma_min, sigma_hi)
    linear_steps = max(n // 2, 1)
    quadratic_steps = n - linear_steps
    levels = [i * threshold_noise / linear_steps for i in range(min(linear_steps, n))]
    if quadratic_steps > 0:
        slack = linear_steps - threshold_noise * n
        quad = slack / (linear_steps * quadratic_steps**2)
        lin = threshold_noise / linear_steps - 2 * slack / quadratic_steps**2
        const = quad * linear_steps**2
        levels += [quad * i**2 + lin * i + const for i in range(linear_steps, n)]
    u = 1.0 - torch.tensor(levels, dtype=torch.float64)
    return sigma_min + u * (sigma_hi - sigma_min)


# --- table shapes -------------------------------------------------------------------------

def sigma_at_timestep(table: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """σ at fractional timesteps by linear interpolation of log σ (as ComfyUI's `model_sampling.sigma`)."""
    log_table = table.double().log()
    t = t.double().clamp(0, len(table) - 1)
    low = t.floor().long()
    high = t.ceil().long()
    w = t - low
    return torch.exp((1 - w) * log_table[low] + w * log_table[high])


def stretch_to_sigma_hi(sigmas: torch.Tensor, sigma_min: float, table_top: float, sigma_hi: float) -> torch.Tensor:
    """Map [σ_min, table_top] onto [σ_min, σ_hi] linearly in log σ (identity when σ_hi = table_top)."""
    gain = math.log(sigma_hi / sigma_min) / math.log(table_top / sigma_min)
    return torch.exp(math.log(sigma_min) + (sigmas.double().log() - math.log(sigma_min)) * gain)


def _from_timesteps(t: torch.Tensor, sigma_min: float, sigma_hi: float, table) -> torch.Tensor:
    if table is None:
        raise ValueError("this shape is defined on the model's sigma table; pass table=")
    table = torch.as_tensor(table, dtype=torch.float64)
    # The table's own σ_min (its first entry) is the bottom; the caller passes the same value.
    return stretch_to_sigma_hi(sigma_at_timestep(table, t), float(table[0]), float(table[-1]), sigma_hi)


def simple(n: int, sigma_min: float, sigma_hi: float, table=None) -> torch.Tensor:
    """Evenly spaced timesteps from the top, T/n apart (ComfyUI's `simple`, without the last step's rounding)."""
    _check(n, sigma_min, sigma_hi)
    steps = len(table) if table is not None else 0
    t = (steps - 1) - torch.arange(n, dtype=torch.float64) * (steps / n)
    return _from_timesteps(t, sigma_min, sigma_hi, table)


def normal(n: int, sigma_min: float, sigma_hi: float, table=None) -> torch.Tensor:
    """Timesteps linear from T−1 to 0 inclusive (ComfyUI's `normal`)."""
    _check(n, sigma_min, sigma_hi)
    steps = len(table) if table is not None else 0
    t = (steps - 1) * (1.0 - _ramp(n))
    return _from_timesteps(t, sigma_min, sigma_hi, table)


def sgm_uniform(n: int, sigma_min: float, sigma_hi: float, table=None) -> torch.Tensor:
    """Timesteps linear from T−1 towards 0 with 0 left out (Stability's SGM `uniform` discretisation)."""
    _check(n, sigma_min, sigma_hi)
    steps = len(table) if table is not None else 0
    t = torch.linspace(steps - 1, 0, n + 1, dtype=torch.float64)[:-1]
    return _from_timesteps(t, sigma_min, sigma_hi, table)


def beta(n: int, sigma_min: float, sigma_hi: float, alpha: float = 0.6, beta_: float = 0.6,
         table=None) -> torch.Tensor:
    """Timesteps at Beta(α, β) quantiles (Lee et al. 2024, "Beta Sampling is All You Need", arXiv
    2407.12173), by scipy.stats.beta.ppf on numpy's grid as ComfyUI's beta_scheduler draws them; kept
    fractional, so no step is merged away and there are always n sigmas."""
    import numpy
    import scipy.stats  # a ComfyUI requirement; imported here so the package loads without it

    _check(n, sigma_min, sigma_hi)
    steps = len(table) if table is not None else 0
    q = 1 - numpy.linspace(0, 1, n, endpoint=False)
    t = torch.from_numpy(scipy.stats.beta.ppf(q, alpha, beta_)).to(torch.float64) * (steps - 1)
    return _from_timesteps(t, sigma_min, sigma_hi, table)


ShapeFn = Callable[..., torch.Tensor]

#: Every shape by the name users pick; table shapes need `table=` (the plain sigma table).
SHAPES: dict[str, ShapeFn] = {
    "karras": karras,
    "exponential": exponential,
    "polyexponential": polyexponential,
    "beta": beta,
    "simple": simple,
    "normal": normal,
    "sgm_uniform": sgm_uniform,
    "kl_optimal": kl_optimal,
    "linear_quadratic": linear_quadratic,
}
TABLE_SHAPES = frozenset({"beta", "simple", "normal", "sgm_uniform"})
