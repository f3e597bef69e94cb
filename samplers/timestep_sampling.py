"""Training timestep densities on the noise time t ∈ [0, 1] (t = 1 pure noise, as in Esser et al. 2024). Pure Python.

ComfyUI's trainer draws p ~ U[0, 1) and asks `model_sampling.percent_to_sigma(p)`, i.e. t = 1 − p, uniform.
Each density here is a monotone map t = G(p) of that same draw, so a density changes where the trainer's
draws land without drawing anything else, and "uniform" is exactly the trainer's own t = 1 − p:

- logit-normal(m, s) (Esser et al. 2024, arXiv 2403.03206, eq. 19): logit(t) ~ N(m, s²), G(p) = sigmoid(m + s·Φ⁻¹(1 − p)).
  m > 0 puts more draws at high noise. diffusers' and kohya's `logit_mean` act on 1 − t (their u indexes the
  timesteps from the noisy end), so their logit_mean is −m here; at m = 0 the two agree.
- mode(s) (Esser et al. 2024, eq. 20): t = f_mode(p) = 1 − p − s·(cos²(πp/2) − 1 + p), monotone for −1 ≤ s ≤ 2/(π − 2).

A window [t_lo, t_hi] truncates the density (the shape inside is kept, as musubi-tuner's
`--preserve_distribution_shape`): p is mapped onto the p-interval whose G lies in the window.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

DENSITIES = ("uniform", "logit_normal", "mode")
#: Largest mode scale for which f_mode stays monotone (Esser et al. 2024, eq. 20).
MODE_SCALE_MAX = 2.0 / (math.pi - 2.0)
_NORMAL = NormalDist()


def logit_normal_time(p: float, mean: float, std: float) -> float:
    """t = sigmoid(m + s·Φ⁻¹(1 − p)): logit-normal(m, s) noise time from a uniform draw p (Esser et al. 2024, eq. 19)."""
    x = 1.0 - p
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    z = mean + std * _NORMAL.inv_cdf(x)
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


def mode_time(p: float, scale: float) -> float:
    """t = 1 − p − s·(cos²(πp/2) − 1 + p) (Esser et al. 2024, eq. 20, "mode" sampling)."""
    return 1.0 - p - scale * (math.cos(math.pi * p / 2.0) ** 2 - 1.0 + p)


def check_density(density: str, logit_std: float, mode_scale: float) -> None:
    """Refuse parameters for which the density is not defined."""
    if density not in DENSITIES:
        raise ValueError(f"unknown timestep density {density!r}; choose one of {', '.join(DENSITIES)}")
    if density == "logit_normal" and not logit_std > 0:
        raise ValueError(f"the logit-normal std s must be > 0, got {logit_std}")
    if density == "mode" and not -1.0 <= mode_scale <= MODE_SCALE_MAX:
        raise ValueError(f"the mode scale must lie in [-1, {MODE_SCALE_MAX:.4f}] (2/(π−2)), where f_mode is "
                         f"monotone (Esser et al. 2024, eq. 20); got {mode_scale}")


def invert_decreasing(function, value: float, low: float = 0.0, high: float = 1.0, iterations: int = 60) -> float:
    """The x in [low, high] with function(x) = value for a decreasing function (bisection)."""
    for _ in range(iterations):
        middle = 0.5 * (low + high)
        if function(middle) > value:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


@dataclass(frozen=True)
class TimestepDensity:
    """t = G(p) for the trainer's uniform draw p, optionally truncated to the p-window [p_lo, p_hi]."""
    density: str = "uniform"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    mode_scale: float = 1.29
    p_lo: float = 0.0
    p_hi: float = 1.0

    def __post_init__(self):
        check_density(self.density, self.logit_std, self.mode_scale)

    def time(self, p: float) -> float:
        """G(p) without the window."""
        if self.density == "logit_normal":
            return logit_normal_time(p, self.logit_mean, self.logit_std)
        if self.density == "mode":
            return mode_time(p, self.mode_scale)
        return 1.0 - p

    def __call__(self, p: float) -> float:
        """The noise time for the trainer's draw p, inside the window."""
        return self.time(self.p_lo + (self.p_hi - self.p_lo) * p)

    def windowed(self, p_of_upper: float, p_of_lower: float) -> "TimestepDensity":
        """This density truncated to the p-interval [p_of_upper, p_of_lower] (G decreases with p)."""
        return TimestepDensity(self.density, self.logit_mean, self.logit_std, self.mode_scale,
                               p_of_upper, p_of_lower)

    @property
    def is_trainers_own(self) -> bool:
        return self.density == "uniform" and self.p_lo == 0.0 and self.p_hi == 1.0
