"""Plots of schedules and noise as images, drawn with Pillow (which ComfyUI ships) and torch.

Pillow is imported inside the drawing functions so `schedules` stays importable with torch alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

COLOURS = [(31, 119, 180), (255, 127, 14)]
AXIS = (90, 90, 90)
TERMINAL_JUMP = 10.0  # a first step more than 10× the next is a terminal (∞ stand-in) step


@dataclass(frozen=True)
class Panel:
    left: int
    top: int
    width: int
    height: int

    def x(self, step: float, steps: int) -> float:
        return self.left + self.width * step / max(steps, 1)

    def y(self, value: float, low: float, high: float) -> float:
        return self.top + self.height * (high - value) / (high - low if high > low else 1.0)


def is_terminal_step(sigmas: torch.Tensor) -> bool:
    """Whether σ₀ is a terminal stand-in for ∞: far above the next sigma."""
    return len(sigmas) > 2 and float(sigmas[1]) > 0 and float(sigmas[0]) > TERMINAL_JUMP * float(sigmas[1])


#: How a model's σ gives its SNR, by the way it mixes signal and noise at σ (ComfyUI's noise_scaling):
#: "sigma" for x = x₀ + σ·ε (discrete and EDM models, ε or v): SNR = 1/σ², log-SNR = −2·ln σ;
#: "flow" for x = (1 − σ)·x₀ + σ·ε (rectified flow, ComfyUI's CONST): SNR = ((1 − σ)/σ)².
#: The default font has no σ or − glyphs, hence the ASCII formulas.
LOG_SNR_FORMULAS = {"sigma": "-2 ln(sigma)", "flow": "2 ln((1-sigma)/sigma)"}


def log_snr(sigma: float, form: str = "sigma", noise_scale: float = 1.0) -> float:
    """log-SNR at σ for the model's form (see LOG_SNR_FORMULAS); −∞ where the SNR is 0 (σ ≥ 1 on a flow model).
    A flow model that scales its noise (ComfyUI's CONST noise_scale s: x = (1 − σ)·x₀ + σ·s·ε) has
    SNR ((1 − σ)/(s·σ))²."""
    if not sigma > 0:
        raise ValueError(f"log-SNR needs σ > 0, got {sigma}")
    if form == "sigma":
        return -2.0 * math.log(sigma)
    if form == "flow":
        return 2.0 * math.log((1.0 - sigma) / (noise_scale * sigma)) if sigma < 1.0 else -math.inf
    raise ValueError(f"unknown log-SNR form {form!r} (expected one of {sorted(LOG_SNR_FORMULAS)})")


def log_snr_formula(form: str, noise_scale: float = 1.0) -> str:
    """The formula `log_snr` uses, in ASCII for the plot's legend."""
    if form == "flow" and noise_scale != 1.0:
        return f"2 ln((1-sigma)/({noise_scale:g} sigma))"
    return LOG_SNR_FORMULAS[form]


def _transformed(schedules: list[torch.Tensor], transform) -> list[list[tuple[int, float]]]:
    """(step, transform(σ)) of every positive σ whose transform is finite, per schedule; `transform` is one
    function or one per schedule."""
    transforms = list(transform) if isinstance(transform, (list, tuple)) else [transform] * len(schedules)
    values = [[(i, f(float(s))) for i, s in enumerate(sigmas) if float(s) > 0]
              for sigmas, f in zip(schedules, transforms)]
    return [[(i, v) for i, v in vs if math.isfinite(v)] for vs in values]


def value_range(schedules: list[torch.Tensor], transform) -> tuple[float, float]:
    """The (low, high) of transform(σ) over every schedule: the range a panel's y axis spans."""
    flat = [v for vs in _transformed(schedules, transform) for _, v in vs]
    return min(flat), max(flat)


def sigma_points(schedules: list[torch.Tensor], panel: Panel, transform) -> list[list[tuple[float, float]]]:
    """Pixel positions of every positive sigma of every schedule whose transform(σ) is finite: x by step
    index (each schedule over its own steps), y by transform(σ) over the range all schedules share.
    `transform` is one function, or one per schedule."""
    low, high = value_range(schedules, transform)
    return [[(panel.x(i, len(sigmas) - 1), panel.y(v, low, high)) for i, v in vs]
            for sigmas, vs in zip(schedules, _transformed(schedules, transform))]


def plot_sigmas(schedules: list[torch.Tensor], labels: list[str], width: int = 960, height: int = 400,
                forms: list[str | None] | None = None, noise_scales: list[float] | None = None,
                sources: list[str] | None = None):
    """σ on a log axis (left) and log-SNR (right) per step, the terminal step marked.

    forms[k] is schedule k's log-SNR form ("sigma" or "flow", see LOG_SNR_FORMULAS), or None where the model
    is not known: then −2·ln σ is used and the legend says it is assumed; noise_scales[k] is a flow model's
    noise scale (1 when not given). Each legend entry names its formula and, in brackets, sources[k] (where the
    formula came from; by default "from the model", or "assumed" where forms[k] is None).
    Returns the RGB image and, per schedule, its points in the σ panel (for checking the drawing)."""
    from PIL import Image, ImageDraw, ImageFont
    forms = list(forms) if forms is not None else [None] * len(schedules)
    used = [form or "sigma" for form in forms]
    scales = list(noise_scales) if noise_scales is not None else [1.0] * len(schedules)
    formulas = [log_snr_formula(form, scale) for form, scale in zip(used, scales)]
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    half = width // 2
    panels = [Panel(60, 34, half - 80, height - 84), Panel(half + 60, 34, half - 80, height - 84)]
    snr_title = ("log-SNR = " + formulas[0] if len(set(formulas)) == 1
                 else "log-SNR (formula per schedule: see legend)")
    titles = ["sigma (log scale)", snr_title]
    snr = [lambda s, form=form, scale=scale: log_snr(s, form, scale) for form, scale in zip(used, scales)]
    result = []
    for panel, title, transform in zip(panels, titles, [math.log, snr]):
        points = sigma_points(schedules, panel, transform)
        low, high = value_range(schedules, transform)
        draw.rectangle([panel.left, panel.top, panel.left + panel.width, panel.top + panel.height], outline=AXIS)
        draw.text((panel.left, 8), title, fill=(0, 0, 0), font=font)
        for value, y in ((high, panel.top), (low, panel.top + panel.height)):
            shown = math.exp(value) if transform is math.log else value + 0.0  # no "-0"
            draw.text((4, y - 6) if panel.left < half else (half + 4, y - 6), f"{shown:.3g}", fill=AXIS, font=font)
        draw.text((panel.left, panel.top + panel.height + 6), "step", fill=AXIS, font=font)
        for k, (sigmas, pts) in enumerate(zip(schedules, points)):
            colour = COLOURS[k % len(COLOURS)]
            if len(pts) > 1:
                draw.line(pts, fill=colour, width=2)
            for x, y in pts:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
            if is_terminal_step(sigmas) and (transform is math.log or used[k] == "sigma"):
                x, y = pts[0]
                draw.rectangle([x - 5, y - 5, x + 5, y + 5], outline=(200, 0, 0), width=2)
                draw.text((x + 8, y - 4 + 12 * k), f"terminal (inf) step: sigma {float(sigmas[0]):.5g}", fill=(200, 0, 0), font=font)
        if transform is math.log:
            result = points
        elif any(used[k] == "flow" and float(s) >= 1.0 for k, sigmas in enumerate(schedules) for s in sigmas):
            draw.text((panel.left, 20), "sigma 1 (flow: pure noise, SNR 0, log-SNR -inf) is not drawn", fill=AXIS,
                      font=font)
    for k, label in enumerate(labels[: len(schedules)]):
        colour = COLOURS[k % len(COLOURS)]
        y = height - 30 + 13 * k
        x = 60
        how = sources[k] if sources else ("from the model" if forms[k] else "assumed, no model connected")
        draw.rectangle([x, y, x + 14, y + 10], fill=colour)
        draw.text((x + 20, y - 1), f"{label} ({len(schedules[k]) - 1} steps); log-SNR = {formulas[k]} "
                  f"({how})", fill=(0, 0, 0), font=font)
    return image, result


def radial_power_spectrum(field: torch.Tensor) -> torch.Tensor:
    """Mean power |FFT|² per integer radius of a (C, H, W) field, averaged over channels, DC at radius 0."""
    spectrum = torch.fft.fftshift(torch.fft.fft2(field.double()), dim=(-2, -1)).abs() ** 2
    height, width = field.shape[-2:]
    ys = torch.arange(height) - height // 2
    xs = torch.arange(width) - width // 2
    radius = torch.sqrt(ys.view(-1, 1) ** 2 + xs.view(1, -1) ** 2).round().long()
    power = spectrum.mean(0).flatten()
    total = torch.zeros(int(radius.max()) + 1, dtype=torch.float64).index_add_(0, radius.flatten(), power)
    count = torch.bincount(radius.flatten()).double()
    return total / count.clamp(min=1) / (height * width)


def plot_noise(noise: torch.Tensor, reference: torch.Tensor, width: int = 800, height: int = 400):
    """A noise sample (channels 0–2 as RGB) and its radial power spectrum next to a reference (white noise)."""
    from PIL import Image, ImageDraw, ImageFont
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    side = min(width // 2, height) - 40
    rgb = noise[:3] if noise.shape[0] >= 3 else noise[:1].expand(3, -1, -1)
    rgb = ((rgb - rgb.mean()) / (3 * rgb.std()) + 0.5).clamp(0, 1)
    picture = Image.fromarray((rgb.permute(1, 2, 0).numpy() * 255).astype("uint8")).resize((side, side), Image.NEAREST)
    image.paste(picture, (20, 30))
    draw.text((20, 10), "noise (channels 0-2)", fill=(0, 0, 0), font=font)
    panel = Panel(width // 2 + 40, 30, width // 2 - 60, height - 80)
    curves = [radial_power_spectrum(noise), radial_power_spectrum(reference)]
    logs = [torch.log10(c[1:].clamp(min=1e-12)) for c in curves]  # radius 0 (DC) off the log axis
    low, high = min(float(v.min()) for v in logs), max(float(v.max()) for v in logs)
    draw.rectangle([panel.left, panel.top, panel.left + panel.width, panel.top + panel.height], outline=AXIS)
    draw.text((panel.left, 10), "radial power spectrum (log)", fill=(0, 0, 0), font=font)
    for k, (values, label) in enumerate(zip(logs, ["this noise", "white noise"])):
        colour = COLOURS[k] if k == 0 else (150, 150, 150)
        pts = [(panel.x(i, len(values) - 1), panel.y(float(v), low, high)) for i, v in enumerate(values)]
        draw.line(pts, fill=colour, width=2)
        draw.text((panel.left + 140 * k, height - 30), label, fill=colour, font=font)
    draw.text((panel.left, panel.top + panel.height + 4), "low frequency → high", fill=AXIS, font=font)
    return image
