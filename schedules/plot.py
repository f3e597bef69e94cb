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


def sigma_points(schedules: list[torch.Tensor], panel: Panel, transform) -> list[list[tuple[float, float]]]:
    """Pixel positions of every positive sigma of every schedule: x by step index (each schedule over
    its own steps), y by transform(σ) over the range all schedules share."""
    values = [transform(float(s)) for sigmas in schedules for s in sigmas if float(s) > 0]
    low, high = min(values), max(values)
    return [[(panel.x(i, len(sigmas) - 1), panel.y(transform(float(s)), low, high))
             for i, s in enumerate(sigmas) if float(s) > 0] for sigmas in schedules]


def plot_sigmas(schedules: list[torch.Tensor], labels: list[str], width: int = 960, height: int = 400):
    """σ on a log axis (left) and log-SNR = −2·ln σ (right) per step, the terminal step marked.

    Returns the RGB image and, per schedule, its points in the σ panel (for checking the drawing)."""
    from PIL import Image, ImageDraw, ImageFont
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    half = width // 2
    panels = [Panel(60, 34, half - 80, height - 84), Panel(half + 60, 34, half - 80, height - 84)]
    titles = ["sigma (log scale)", "log-SNR = -2 ln(sigma)"]  # the default font has no σ, ∞ or − glyphs
    transforms = [math.log, lambda s: -2.0 * math.log(s)]
    result = []
    for panel, title, transform in zip(panels, titles, transforms):
        points = sigma_points(schedules, panel, transform)
        values = [transform(float(s)) for sigmas in schedules for s in sigmas if float(s) > 0]
        low, high = min(values), max(values)
        draw.rectangle([panel.left, panel.top, panel.left + panel.width, panel.top + panel.height], outline=AXIS)
        draw.text((panel.left, 8), title, fill=(0, 0, 0), font=font)
        for value, y in ((high, panel.top), (low, panel.top + panel.height)):
            shown = math.exp(value) if transform is math.log else value
            draw.text((4, y - 6) if panel.left < half else (half + 4, y - 6), f"{shown:.3g}", fill=AXIS, font=font)
        draw.text((panel.left, panel.top + panel.height + 6), "step", fill=AXIS, font=font)
        for k, (sigmas, pts) in enumerate(zip(schedules, points)):
            colour = COLOURS[k % len(COLOURS)]
            draw.line(pts, fill=colour, width=2)
            for x, y in pts:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
            if is_terminal_step(sigmas):
                x, y = pts[0]
                draw.rectangle([x - 5, y - 5, x + 5, y + 5], outline=(200, 0, 0), width=2)
                draw.text((x + 8, y - 4 + 12 * k), f"terminal (inf) step: sigma {float(sigmas[0]):.5g}", fill=(200, 0, 0), font=font)
        if transform is math.log:
            result = points
    for k, label in enumerate(labels[: len(schedules)]):
        colour = COLOURS[k % len(COLOURS)]
        y = height - 22
        x = 60 + 260 * k
        draw.rectangle([x, y, x + 14, y + 10], fill=colour)
        draw.text((x + 20, y - 1), f"{label} ({len(schedules[k]) - 1} steps)", fill=(0, 0, 0), font=font)
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
