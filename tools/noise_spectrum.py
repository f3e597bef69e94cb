"""Pyramid-noise spectrum picture: `python3 -m tools spectrum` writes docs/noise/spectrum.png.

Radial power (log–log) of the pack's pyramid noise, the published loop (Whitaker 2023 / kohya
sd-scripts' pyramid_noise_like, as tools/noise_reference.py transcribes it, batch-wide std) and plain white noise, averaged
over many draws, for kohya's default discount 0.3 and the report's 0.8 (6 and 10 iterations).
"""
from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

import torch

from tools.host import PACK_ROOT
from tools.noise_reference import published_pyramid_noise
from tools.pack import load_pack

SETTINGS = [(6, 0.3), (10, 0.8)]
CURVES = [("ours (SNRTPyramidNoise)", (200, 40, 40)), ("published (kohya, batch 4)", (40, 90, 200)),
          ("plain white (randn)", (120, 120, 120))]


def mean_spectrum(draws) -> torch.Tensor:
    from snr_toolkit.schedules.plot import radial_power_spectrum
    return torch.stack([radial_power_spectrum(sample) for batch in draws for sample in batch]).mean(0)


def spectra(side: int, batches: int):
    from snr_toolkit.samplers.pyramid_noise import pyramid_noise
    torch.manual_seed(0)
    rng = random.Random(0)
    shape = (4, 4, side, side)
    result = {}
    for iterations, discount in SETTINGS:
        ours = mean_spectrum(pyramid_noise(torch.randn(shape), seed, iterations, discount) for seed in range(batches))
        theirs = mean_spectrum(published_pyramid_noise(shape, iterations, discount, 0.0, rng) for _ in range(batches))
        white = mean_spectrum(torch.randn(shape) for _ in range(batches))
        result[(iterations, discount)] = [ours, theirs, white]
    return result


def draw(result, side: int, path: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont
    font = ImageFont.load_default()
    panel_w, panel_h, margin = 420, 320, 56
    image = Image.new("RGB", (len(result) * (panel_w + margin) + margin, panel_h + 2 * margin + 40), "white")
    pen = ImageDraw.Draw(image)
    nyquist = side // 2
    x_lo, x_hi = math.log10(1), math.log10(nyquist)
    y_lo, y_hi = -1.5, 3.0
    for p, ((iterations, discount), curves) in enumerate(result.items()):
        left, top = margin + p * (panel_w + margin), margin
        pen.rectangle([left, top, left + panel_w, top + panel_h], outline=(0, 0, 0))
        pen.text((left, top - 30), f"{iterations} iterations, discount {discount}: radial power (log-log)",
                 fill=(0, 0, 0), font=font)

        def xy(radius, power):
            x = left + (math.log10(radius) - x_lo) / (x_hi - x_lo) * panel_w
            y = top + (y_hi - math.log10(max(power, 10**y_lo))) / (y_hi - y_lo) * panel_h
            return x, y
        for decade in range(int(y_lo), int(y_hi) + 1):
            _, y = xy(1, 10.0**decade)
            pen.line([left - 4, y, left, y], fill=(0, 0, 0))
            pen.text((left - 40, y - 6), f"1e{decade}", fill=(0, 0, 0), font=font)
        for radius in (1, 2, 4, 8, 16, 32, 64, 128):
            if radius <= nyquist:
                x, _ = xy(radius, 1)
                pen.line([x, top + panel_h, x, top + panel_h + 4], fill=(0, 0, 0))
                pen.text((x - 6, top + panel_h + 6), str(radius), fill=(0, 0, 0), font=font)
        pen.text((left + panel_w / 2 - 90, top + panel_h + 20), f"radius (cycles per {side}-cell side)",
                 fill=(0, 0, 0), font=font)
        for k, (spectrum, (label, colour)) in enumerate(zip(curves, CURVES)):
            points = [xy(r, float(spectrum[r])) for r in range(1, nyquist + 1)]
            pen.line(points, fill=colour, width=3 if k == 0 else 2)
            pen.text((left + panel_w - 230, top + 10 + 16 * k),
                     f"{label}  DC {float(spectrum[0]):.3g}", fill=colour, font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=PACK_ROOT / "docs" / "noise" / "spectrum.png")
    parser.add_argument("--side", type=int, default=64, help="latent side (default 64: a 512 px canvas)")
    parser.add_argument("--batches", type=int, default=64, help="batches of 4 averaged per curve")
    args = parser.parse_args(argv)
    load_pack("snr_toolkit")
    result = spectra(args.side, args.batches)
    draw(result, args.side, args.out)
    for (iterations, discount), (ours, theirs, white) in result.items():
        low = slice(0, 4)
        print(f"{iterations} iterations, discount {discount}: mean power at radius 0–3 — ours "
              f"{float(ours[low].mean()):.3g}, published {float(theirs[low].mean()):.3g}, white {float(white[low].mean()):.3g}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
