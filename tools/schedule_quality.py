"""Schedule quality on the ideal model (demo/ideal_model.py). Run: python3 -m tools quality [--quick]

Every built-in ComfyUI scheduler on a ZTSNR model and the pack's ztsnr_* schedules (with Scale σ_max
by Resolution), sampled by ComfyUI's dpmpp_2m at 20, 28 and 40 steps and two resolutions. Two metrics:

- global: total variation between the samples' mode frequencies and the true ones (composition,
  mean colour: black and white images included);
- local: mean |within-mode std / true std − 1| (detail).

Then it checks the target: at every step count and resolution the default ztsnr schedule is not
beaten on both metrics by any built-in, beats karras on the local metric, and beats normal and
simple on the global one at the larger resolution.

Flow rows (`--flow` runs only these): the same mixture's exact denoiser in rectified-flow form
(xₜ = (1 − t)·x₀ + t·ε) inside a real ComfyUI SD3 model object, at SD3's training canvas 1024² and at
2048², ComfyUI's `simple` scheduler: the fixed shift 3, the shift scaled by Scale σ_max by Resolution
(√ pixels: 6 at 2048²) and Flux's token rule (ModelSamplingFlux). It reports for each whether mode
fidelity (global error) at 2048² stays within 0.05 of 1024²'s; the target is only that the √-pixels
shift loses no more modes than the fixed one at 2048².
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


def quality_row(mixture, out, **fields) -> dict:
    """One result row: `fields`, then the ideal model's three measures of the samples `out`."""
    return dict(fields, global_error=ideal_model.global_error(mixture, out),
                local_error=ideal_model.local_error(mixture, out), black_white=ideal_model.mode_share(mixture, out))


def summary(row: dict) -> str:
    return f"global {row['global_error']:.3f}  local {row['local_error']:.4f}  black+white {row['black_white']:.2f}"


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
                row = quality_row(mixture, out, pixels=pixels, steps=steps, schedule=label)
                rows.append(row)
                progress(f"{pixels:5d}px {steps:3d} steps {label:>22}: {summary(row)}")
    return rows


FLOW_CANVASES = [1024, 2048]
FLOW_FIXED = "fixed shift 3 (ComfyUI's SD3 default)"
FLOW_SCALED = "√ pixels shift (Scale σ_max by Resolution)"
FLOW_FLUX_RULE = "Flux's token rule (ModelSamplingFlux)"


def evaluate_flow(runner, canvases, steps: int, samples, progress=print) -> list[dict]:
    """The ideal model as an SD3 flow model at each canvas, under a fixed and two resolution-dependent shifts."""
    import math
    rows = []
    for pixels in canvases:
        # 4 channels, as the demo: the modes differ in 3 of them, and SD3's other 12 would add the same distance
        # to every mode at 4× the cost. The latent is filled (not all zero) so ComfyUI keeps its 4 channels; its
        # value is multiplied by 1 − σ = 0 at the first step, where flow sampling starts from pure noise.
        mixture = comfy_runs.mixture_for(pixels)
        model = comfy_runs.ideal_sd3(mixture)
        configurations = {
            FLOW_FIXED: model,
            FLOW_SCALED: runner.scale(model, pixels),
            FLOW_FLUX_RULE: runner.node["ModelSamplingFlux"]().patch(model, 1.15, 0.5, pixels, pixels)[0],
        }
        for label, configured in configurations.items():
            sampling = configured.get_model_object("model_sampling")
            # σ/(1 − σ) multiplier α of either form (ModelSamplingFlux keeps μ = ln α).
            alpha = math.exp(float(sampling.shift)) if label == FLOW_FLUX_RULE else float(sampling.shift)
            sigmas = runner.sigmas(configured, "simple", steps)
            out = runner.sample(configured, sigmas, samples[pixels], pixels, seed=1, fill=0.1)
            row = quality_row(mixture, out, pixels=pixels, steps=steps, schedule=label, alpha=alpha,
                              second_sigma_ve=float(sigmas[1] / (1 - sigmas[1])))
            rows.append(row)
            progress(f"{pixels:5d}px flow {label:>44} α {alpha:6.2f}: {summary(row)}")
    return rows


#: Mode fidelity counts as kept when the global error grows by at most this (about two of 48 samples moving
#: to another mode; the rows share seeds, so the comparison is paired).
FLOW_KEPT_MARGIN = 0.05


def flow_verdicts(rows: list[dict]) -> dict[str, str]:
    """For each shift: is mode fidelity at the largest canvas kept (global error within FLOW_KEPT_MARGIN of
    the smallest canvas's), and what it costs in detail (local error)."""
    small, large = min(row["pixels"] for row in rows), max(row["pixels"] for row in rows)
    at = {(row["schedule"], row["pixels"]): row for row in rows}
    verdicts = {}
    for label in (FLOW_FIXED, FLOW_SCALED, FLOW_FLUX_RULE):
        a, b = at[(label, small)], at[(label, large)]
        kept = b["global_error"] <= a["global_error"] + FLOW_KEPT_MARGIN
        verdicts[label] = (f"{'kept' if kept else 'NOT kept'}: global {a['global_error']:.3f} → {b['global_error']:.3f}, "
                           f"local {a['local_error']:.4f} → {b['local_error']:.4f} ({small}px → {large}px)")
    return verdicts


def check_flow(rows: list[dict]) -> list[str]:
    """The target for the flow rows: at the largest canvas the √-pixels shift loses no more modes than the
    fixed shift (its global error is not higher). Whether it keeps them all is reported, not required."""
    large = max(row["pixels"] for row in rows)
    at = {row["schedule"]: row for row in rows if row["pixels"] == large}
    if at[FLOW_SCALED]["global_error"] > at[FLOW_FIXED]["global_error"]:
        return [f"flow {large}px: the √-pixels shift loses more modes than the fixed shift "
                f"({at[FLOW_SCALED]['global_error']:.3f} vs {at[FLOW_FIXED]['global_error']:.3f})"]
    return []


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
    parser.add_argument("--flow", action="store_true", help="only the flow-model rows")
    args = parser.parse_args(argv)
    runner = comfy_runs.Runner(comfy_runs.start_comfyui())
    scheduler = pack_scheduler_module()
    default = f"ztsnr_{scheduler.DEFAULT_SHAPE}"
    resolutions = [512, 1024]
    step_counts = [20] if args.quick else [20, 28, 40]
    samples = {512: 32, 1024: 16} if args.quick else {512: 96, 1024: 64}
    rows, failures = [], []
    if not args.flow:
        rows = evaluate(runner, resolutions, step_counts, samples, scheduler.KSAMPLER_SCHEDULER_NAMES)
        failures = check_target(rows, default)
        print(f"\ndefault: {default}, σ_hi base {scheduler.DEFAULT_SIGMA_HI_BASE} × resolution factor; "
              f"dpmpp_2m; samples per run {samples}")
    flow_samples = {1024: 16, 2048: 16} if args.quick else {1024: 48, 2048: 48}
    flow_rows = evaluate_flow(runner, FLOW_CANVASES, 28, flow_samples)
    failures += check_flow(flow_rows)
    print(f"flow rows: ideal SD3 flow model, simple scheduler, dpmpp_2m, 28 steps; samples per run {flow_samples}")
    for label, verdict in flow_verdicts(flow_rows).items():
        print(f"  mode fidelity, {label}: {verdict}")
    print("target:", "holds" if not failures else "MISSED")
    for failure in failures:
        print("  -", failure)
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(exist_ok=True)
    suffix = ("-flow" if args.flow else "") + ("-quick" if args.quick else "")
    out = out_dir / f"schedule-quality-{datetime.date.today().isoformat()}{suffix}.json"
    out.write_text(json.dumps(dict(default=default, sigma_hi_base=scheduler.DEFAULT_SIGMA_HI_BASE, samples=samples,
                                   rows=rows, flow_samples={str(k): v for k, v in flow_samples.items()},
                                   flow_rows=flow_rows, failures=failures), indent=2))
    print(f"written to {out.relative_to(ROOT)}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
