"""Schedule quality on the ideal model (demo/ideal_model.py). Run: python3 -m tools quality [--quick]

Every built-in ComfyUI scheduler on a ZTSNR model and the pack's ztsnr_* schedules (with Scale σ_max
by Resolution), sampled by ComfyUI's dpmpp_2m at 20, 28 and 40 steps and two resolutions. Two metrics:

- global: total variation between the samples' mode frequencies and the true ones (composition,
  mean colour: black and white images included);
- local: mean |within-mode std / true std − 1| (detail).

Then it checks the target: at every step count and resolution the default ztsnr schedule is not
beaten on both metrics by any built-in, beats karras on the local metric, and beats normal and
simple on the global one at the larger resolution.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from tools.host import PACK_ROOT as ROOT

from tools import comfy_runs
from tools import ideal_model

BUILT_IN = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal", "linear_quadratic",
            "kl_optimal"]


def evaluate(runner, resolutions, step_counts, samples, ours: list[str], progress=print) -> list[dict]:
    rows = []
    for pixels in resolutions:
        mixture = comfy_runs.mixture_for(pixels)
        ztsnr = comfy_runs.ideal_sdxl(mixture, ztsnr=True)
        scaled = runner.scale(ztsnr, pixels)
        for steps in step_counts:
            runs = [(name, ztsnr, name) for name in BUILT_IN] + [(name, scaled, name) for name in ours]
            for label, model, scheduler in runs:
                out = runner.sample(model, runner.sigmas(model, scheduler, steps), samples[pixels], pixels, seed=1)
                row = dict(pixels=pixels, steps=steps, schedule=label,
                           global_error=ideal_model.global_error(mixture, out),
                           local_error=ideal_model.local_error(mixture, out),
                           black_white=ideal_model.mode_share(mixture, out))
                rows.append(row)
                progress(f"{pixels:5d}px {steps:3d} steps {label:>22}: global {row['global_error']:.3f}  "
                         f"local {row['local_error']:.4f}  black+white {row['black_white']:.2f}")
    return rows


def check_target(rows: list[dict], default: str) -> list[str]:
    """The target's failures (empty when it holds)."""
    failures = []
    largest = max(row["pixels"] for row in rows)
    for key in sorted({(row["pixels"], row["steps"]) for row in rows}):
        group = {row["schedule"]: row for row in rows if (row["pixels"], row["steps"]) == key}
        ours = group[default]
        where = f"{key[0]}px, {key[1]} steps"
        for name in BUILT_IN:
            other = group[name]
            if other["global_error"] < ours["global_error"] and other["local_error"] < ours["local_error"]:
                failures.append(f"{where}: {name} beats {default} on both metrics")
        if not ours["local_error"] < group["karras"]["local_error"]:
            failures.append(f"{where}: {default} does not beat karras on the local metric")
        if key[0] == largest:
            for name in ("normal", "simple"):
                if not ours["global_error"] < group[name]["global_error"]:
                    failures.append(f"{where}: {default} does not beat {name} on the global metric")
    return failures


def pack_scheduler_module():
    """The pack's scheduler module as ComfyUI's loader registered it (its name is the pack's path)."""
    return next(module for name, module in sys.modules.items() if name.endswith("snr_toolkit.nodes.scheduler"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one step count, fewer samples (a smoke run)")
    args = parser.parse_args(argv)
    runner = comfy_runs.Runner(comfy_runs.start_comfyui())
    scheduler = pack_scheduler_module()
    default = f"ztsnr_{scheduler.DEFAULT_SHAPE}"
    resolutions = [512, 1024]
    step_counts = [20] if args.quick else [20, 28, 40]
    samples = {512: 32, 1024: 16} if args.quick else {512: 96, 1024: 64}
    rows = evaluate(runner, resolutions, step_counts, samples, scheduler.KSAMPLER_SCHEDULER_NAMES)
    failures = check_target(rows, default)
    print(f"\ndefault: {default}, σ_hi base {scheduler.DEFAULT_SIGMA_HI_BASE} × resolution factor; "
          f"dpmpp_2m; samples per run {samples}")
    print("target:", "holds" if not failures else "MISSED")
    for failure in failures:
        print("  -", failure)
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"schedule-quality-{datetime.date.today().isoformat()}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(dict(default=default, sigma_hi_base=scheduler.DEFAULT_SIGMA_HI_BASE, samples=samples,
                                   rows=rows, failures=failures), indent=2))
    print(f"written to {out.relative_to(ROOT)}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
