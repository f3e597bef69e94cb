"""The demo: what ZTSNR, the terminal step and σ_max scaling do, on a perfect diffusion model.

Run: python3 -m tools demo [--quick] [--out DIR]

The model is the exact denoiser of a six-mode Gaussian mixture (ideal_model.py: black, white, grey
and three large shapes, equally likely), inside a real ComfyUI SDXL model object and sampled by
ComfyUI's own SamplerCustomAdvanced (dpmpp_2m, 28 steps). Because the model is perfect, every
difference between the rows below is the schedule's doing. Writes samples.png (a grid of samples),
schedules.png (the schedules, drawn by the pack's Preview Sigmas node) and prints how far each
sample set is from the true distribution.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from tools.host import PACK_ROOT

from tools import comfy_runs
from tools import ideal_model


def to_rgb(latents: torch.Tensor, contrast: float = 0.5) -> torch.Tensor:
    """Model-space latents (channels 0–2 at ±contrast for black/white) as 0…1 RGB images (B, H, W, 3)."""
    return (latents[:, :3] / (2 * contrast) + 0.5).clamp(0, 1).permute(0, 2, 3, 1)


def grid_image(rows: list[tuple[str, torch.Tensor]], columns: int, cell: int = 64):
    """One row of `columns` sample thumbnails per configuration, its name on the left."""
    from PIL import Image, ImageDraw
    label_width = 330
    image = Image.new("RGB", (label_width + columns * (cell + 4), len(rows) * (cell + 6) + 6), "white")
    draw = ImageDraw.Draw(image)
    for r, (name, rgb) in enumerate(rows):
        y = 6 + r * (cell + 6)
        draw.text((6, y + cell // 2 - 6), name, fill=(0, 0, 0))
        for c in range(min(columns, rgb.shape[0])):
            thumb = Image.fromarray((rgb[c].numpy() * 255).astype("uint8")).resize((cell, cell), Image.BILINEAR)
            image.paste(thumb, (label_width + c * (cell + 4), y))
    return image


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller canvases and batches (for the test suite)")
    parser.add_argument("--out", type=Path, default=PACK_ROOT / "artifacts" / "demo",
                        help="where the PNGs and results.json (the table's numbers) go (default artifacts/demo)")
    parser.add_argument("--steps", type=int, default=28)
    args = parser.parse_args(argv)
    resolutions = [256, 512] if args.quick else [1024, 2048]
    batch = {256: 24, 512: 16} if args.quick else {1024: 48, 2048: 24}
    args.out.mkdir(parents=True, exist_ok=True)

    runner = comfy_runs.Runner(comfy_runs.start_comfyui())
    table, grid_rows, schedules = [], [], {}
    jobs = [(pixels, name, config) for pixels in resolutions
            for name, config in runner.configurations(comfy_runs.mixture_for(pixels), pixels, args.steps).items()]
    for pixels, name, (model, sigmas) in tqdm(jobs, desc="demo", unit="run", file=sys.stdout):
        mixture = comfy_runs.mixture_for(pixels)
        samples = runner.sample(model, sigmas, batch[pixels], pixels, seed=1)
        table.append((pixels, name, ideal_model.mode_share(mixture, samples), ideal_model.global_error(mixture, samples),
                      ideal_model.local_error(mixture, samples), float(sigmas[0]), len(sigmas) - 1))
        grid_rows.append((f"{pixels}px  {name}", to_rgb(samples)))
        if pixels == resolutions[-1]:
            schedules[name] = sigmas
    truth = ideal_model.GaussianMixture(comfy_runs.mixture_for(resolutions[0]).means, 0.5)
    grid_rows.insert(0, (f"{resolutions[0]}px  true distribution", to_rgb(truth.sample(16, torch.Generator().manual_seed(0)))))
    grid_image(grid_rows, 12).save(args.out / "samples.png")

    preview = runner.node["SNRTPreviewSigmas"].execute
    image = preview(schedules["ZTSNR model, ComfyUI karras"], "ComfyUI karras (ZTSNR)", "ours: ztsnr_exponential + sigma_max scale",
                    schedules["ZTSNR model, ours + Scale sigma_max by Resolution"])[0]
    from PIL import Image
    Image.fromarray((image[0].numpy() * 255).astype("uint8")).save(args.out / "schedules.png")

    print(f"\nIdeal model: 6 equally likely modes (black, white, grey, 3 shapes); dpmpp_2m, {args.steps} steps.")
    print("black+white: share of samples in the black or white mode (true: 0.33). global: total variation of")
    print("mode frequencies from the truth (0 best). local: |within-mode std / true − 1| (0 best).\n")
    print(f"{'canvas':>7}  {'schedule':52} {'black+white':>11} {'global':>7} {'local':>7} {'σ₀':>9}")
    for pixels, name, share, global_error, local_error, first, steps in table:
        print(f"{pixels:>5}px  {name:52} {share:11.2f} {global_error:7.3f} {local_error:7.3f} {first:9.2f}")
    rows = [{"canvas": pixels, "schedule": name, "black_white_share": share, "global_error": global_error,
             "local_error": local_error, "first_sigma": first, "steps": steps}
            for pixels, name, share, global_error, local_error, first, steps in table]
    (args.out / "results.json").write_text(json.dumps({"sampler": "dpmpp_2m", "steps": args.steps, "batch": batch,
                                                        "rows": rows}, indent=1))
    print(f"\nwrote {args.out / 'samples.png'}, {args.out / 'schedules.png'} and {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
