"""Every KSampler sampler on the ideal model, from the jump at σ 20000. Run: python3 -m tools samplers [--quick]

The model is the exact denoiser of a six-mode Gaussian mixture (tools/ideal_model.py) inside a real
ComfyUI SDXL v-pred + ZTSNR model object, sampled by ComfyUI's own SamplerCustomAdvanced with every
name in the running ComfyUI's `comfy.samplers.KSampler.SAMPLERS`, 28 steps, on two schedules:

- `ztsnr_exponential`: the pack's default KSampler scheduler (σ 20000 → σ_hi 400, exponential to σ_min);
- `karras`: ComfyUI's core karras on the same ZTSNR model (from the model's own σ_max, 4500).

Each run records whether the output is finite, the global (mode frequency) and local (within-mode
spread) errors of ideal_model.py, the bootstrap std of its global error, model calls and seconds; an
exception or a time-out is recorded as the run's error. Because even exact samples have a nonzero
global error at a finite batch, the survey also measures that floor: the global error of batches of
true draws from the mixture (mean, std, 95th percentile). All runs share one seed (common noise), so
differences between samplers are less noisy than the floor's std suggests.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import sys
import time
from pathlib import Path

import torch

from tools import comfy_runs
from tools import ideal_model
from tools import host
from tools.host import PACK_ROOT as ROOT

SCHEDULES = ["ztsnr_exponential", "karras"]
STEPS = 28
SEED = 1

#: Full run: 512² and 1024², SDXL's training side and half of it (with σ_hi 400 the jump lands just
#: above the σ ≈ 50–300 where modes are decided at 1024², well above it at 512²). On one thread of
#: this shared 2-core machine a model call costs ~0.05 µs per latent element (ComfyUI's cond batching
#: plus the float64 denoiser); 42 samplers × 2 schedules × 2 sizes × ~38 calls in ~20 CPU minutes
#: allow ~1.5 million elements per call: 96 samples at 512², 24 at 1024². The exact-sampling floor in
#: the output says how much of the global error that batch leaves to chance.
FULL = dict(sizes=[512, 1024], batch={512: 96, 1024: 24}, time_limit=90.0, floor_replicates=2000)
QUICK = dict(sizes=[128, 256], batch={128: 16, 256: 16}, time_limit=10.0, floor_replicates=2000)


class RunTimeout(Exception):
    """A run went past its time limit (an adaptive sampler that does not converge, say)."""


def ksampler_samplers() -> list[str]:
    """The running ComfyUI's KSampler sampler list (KSamplerSelect offers the same names)."""
    import comfy.samplers
    return list(comfy.samplers.KSampler.SAMPLERS)


class CountingModel:
    """The ideal ZTSNR SDXL model with a counter of model evaluations (per-sample calls ÷ batch)."""

    def __init__(self, mixture):
        self.model = comfy_runs.ideal_sdxl(mixture, ztsnr=True)
        self.rows = 0
        self.model.set_model_unet_function_wrapper(self._denoise)
        self.mixture = mixture

    def _denoise(self, apply_model, args):
        self.rows += args["input"].shape[0]
        return self.mixture.denoise(args["input"], args["timestep"])


def sample(runner, model, sigmas, sampler: str, batch: int, pixels: int) -> torch.Tensor:
    """comfy_runs.Runner.sample with a one-token prompt: the ideal model ignores the prompt, and
    ComfyUI repeats a 77×2048 one to the batch at every call, which costs more than the model here."""
    side = pixels // comfy_runs.PIXELS_PER_CELL
    conditioning = [[torch.zeros(1, 1, 2048), {"pooled_output": torch.zeros(1, 1280)}]]
    node = runner.node
    guider = node["CFGGuider"].execute(model, conditioning, conditioning, 1.0)[0]
    noise = node["RandomNoise"].execute(SEED)[0]
    sampler_object = node["KSamplerSelect"].execute(sampler)[0]
    latent = {"samples": torch.zeros(batch, comfy_runs.LATENT_CHANNELS, side, side)}
    out = node["SamplerCustomAdvanced"].execute(noise, guider, sampler_object, sigmas, latent)[0]["samples"]
    return model.model.process_latent_in(out)  # the sampler hands back process_latent_out(x)


def _alarm(signum, frame):
    raise RunTimeout()


def run_one(runner, counting: CountingModel, sigmas, sampler: str, batch: int, pixels: int,
            time_limit: float) -> dict:
    """One sampler on one schedule: finite, errors, calls, seconds (or the error it raised)."""
    mixture = counting.mixture
    row = dict(sampler=sampler, finite=None, finite_fraction=None, global_error=None, global_error_bootstrap_std=None,
               local_error=None, model_calls=None, seconds=None, cpu_seconds=None, error=None)
    counting.rows = 0
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, time_limit)
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        out = sample(runner, counting.model, sigmas, sampler, batch, pixels)
    except RunTimeout:
        row["error"] = f"timeout: over {time_limit:g} s"
        return row
    except Exception as error:  # noqa: BLE001 - a sampler that raises is a result, not a crash
        row["error"] = f"{type(error).__name__}: {error}"[:300]
        return row
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        row["seconds"] = round(time.perf_counter() - start, 2)
        row["cpu_seconds"] = round(time.process_time() - cpu_start, 2)
        row["model_calls"] = round(counting.rows / batch, 1)
    finite = torch.isfinite(out.reshape(batch, -1)).all(1)
    row["finite"] = bool(finite.all())
    row["finite_fraction"] = float(finite.double().mean())
    if row["finite"]:
        row["global_error"] = ideal_model.global_error(mixture, out)
        row["local_error"] = ideal_model.local_error(mixture, out)
        row["global_error_bootstrap_std"] = bootstrap_global_std(mixture, ideal_model.nearest_modes(mixture, out))
    return row


def _tv(modes: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Total variation of each row's mode frequencies from `weights` (as ideal_model.global_error)."""
    counts = torch.nn.functional.one_hot(modes, len(weights)).double().sum(-2)
    return 0.5 * (counts / modes.shape[-1] - weights.double()).abs().sum(-1)


def bootstrap_global_std(mixture, modes: torch.Tensor, replicates: int = 500) -> float:
    """Std of the global error over bootstrap resamples of one run's samples."""
    generator = torch.Generator().manual_seed(0)
    picks = torch.randint(0, len(modes), (replicates, len(modes)), generator=generator)
    return float(_tv(modes[picks], mixture.weights).std())


def exact_floor(mixture, batch: int, replicates: int, readback_draws: int = 128) -> dict:
    """Global error of `replicates` batches of an exact sampler: mode labels drawn with the mixture's
    weights (as GaussianMixture.sample draws them). `readback` checks on true draws that nearest_modes
    recovers the drawn mode, so that labels alone stand for full samples."""
    generator = torch.Generator().manual_seed(12345)
    labels = torch.multinomial(mixture.weights, replicates * batch, replacement=True, generator=generator)
    errors = _tv(labels.reshape(replicates, batch), mixture.weights)
    modes = torch.multinomial(mixture.weights, readback_draws, replacement=True, generator=generator)
    draws = mixture.means[modes] + mixture.spread * torch.randn((readback_draws, *mixture.means.shape[1:]),
                                                                generator=generator)
    readback = float((ideal_model.nearest_modes(mixture, draws) == modes).double().mean())
    return dict(batch=batch, replicates=replicates, mean=float(errors.mean()), std=float(errors.std()),
                p95=float(errors.quantile(0.95)), readback=readback)


def survey(runner, samplers: list[str], sizes: list[int], batch: dict, time_limit: float, floor_replicates: int,
           progress=print, checkpoint=None) -> dict:
    """Rows for every sampler × size × schedule (sampler-major, so a cut-short run covers a prefix of the
    sampler list on every configuration), and the exact-sampling floor per size. `checkpoint(result)`
    is called after every row."""
    rows, floors, configs = [], {}, []
    for pixels in sizes:
        mixture = comfy_runs.mixture_for(pixels)
        counting = CountingModel(mixture)
        floors[str(pixels)] = f = exact_floor(mixture, batch[pixels], floor_replicates)
        progress(f"{pixels}px, batch {batch[pixels]}: exact-sampling global error {f['mean']:.3f} ± {f['std']:.3f} "
                 f"(95th percentile {f['p95']:.3f})")
        configs += [(pixels, counting, schedule, runner.sigmas(counting.model, schedule, STEPS)) for schedule in SCHEDULES]
    result = dict(rows=rows, exact_floor=floors)
    for sampler in samplers:
        for pixels, counting, schedule, sigmas in configs:
            row = dict(pixels=pixels, batch=batch[pixels], schedule=schedule, sigma_0=float(sigmas[0]),
                       **run_one(runner, counting, sigmas, sampler, batch[pixels], pixels, time_limit))
            rows.append(row)
            progress(format_row(row))
            if checkpoint:
                checkpoint(result)
    return result


def format_row(row: dict) -> str:
    head = f"{row['pixels']:5d}px {row['schedule']:>17} {row['sampler']:>28}: "
    if row["error"]:
        return head + "ERROR " + row["error"]
    if not row["finite"]:
        return head + f"NON-FINITE ({row['finite_fraction']:.2f} of samples finite)  {row['seconds']:.1f} s"
    return (head + f"global {row['global_error']:.3f} (±{row['global_error_bootstrap_std']:.3f})  "
            f"local {row['local_error']:.3f}  calls {row['model_calls']:5.1f}  {row['seconds']:6.1f} s "
            f"({row['cpu_seconds']:.1f} s CPU)")


def table(result: dict) -> str:
    """Markdown table: one line per sampler, global / local per schedule × size."""
    rows = result["rows"]
    keys = sorted({(r["schedule"], r["pixels"]) for r in rows}, key=lambda k: (SCHEDULES.index(k[0]), k[1]))
    cell = {(r["sampler"], r["schedule"], r["pixels"]): r for r in rows}
    samplers = list(dict.fromkeys(r["sampler"] for r in rows))
    lines = ["| sampler | " + " | ".join(f"{s} {p}²" for s, p in keys) + " | calls |",
             "|---|" + "---|" * len(keys) + "---|"]
    for sampler in samplers:
        cells, calls = [], []
        for schedule, pixels in keys:
            r = cell.get((sampler, schedule, pixels))
            if r is None:
                cells.append("")
            elif r["error"]:
                cells.append("timeout" if r["error"].startswith("timeout") else "error")
            elif not r["finite"]:
                cells.append("**NaN**")
            else:
                cells.append(f"{r['global_error']:.3f} / {r['local_error']:.3f}")
            if r is not None and r["model_calls"] and not r["error"]:
                calls.append(f"{r['model_calls']:g}")
        calls = list(dict.fromkeys(calls))  # one number when every configuration made the same calls
        lines.append(f"| {sampler} | " + " | ".join(cells) + f" | {'/'.join(calls) or '–'} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small canvases and batches (a smoke run, ~2 min)")
    parser.add_argument("--samplers", help="comma-separated subset of the KSampler list (default: all of it)")
    parser.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/sampler-survey-<date>[-quick].json)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    # One thread: on a shared 2-core machine two threads spend more time waiting on each other than
    # computing (a 512² batch-64 run: 0.9 s on one thread, 2.4 s on two).
    torch.set_num_threads(1)

    runner = comfy_runs.Runner(comfy_runs.start_comfyui())
    available = ksampler_samplers()
    samplers = available
    if args.samplers:
        samplers = [name.strip() for name in args.samplers.split(",") if name.strip()]
        unknown = [name for name in samplers if name not in available]
        if unknown:
            parser.error(f"not in this ComfyUI's KSampler list: {', '.join(unknown)}; it offers {', '.join(available)}")

    out = args.out or (ROOT / "benchmarks" / "results" /
                       f"sampler-survey-{datetime.date.today().isoformat()}{'-quick' if args.quick else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    header = dict(comfyui=host.comfyui_version(Path(os.environ["SNRT_COMFYUI"])), machine=machine(), steps=STEPS,
                  seed=SEED, schedules=SCHEDULES, ksampler_samplers=available, surveyed=samplers, quick=args.quick,
                  sizes=settings["sizes"], batch={str(k): v for k, v in settings["batch"].items()},
                  time_limit_s=settings["time_limit"])
    started, cpu_started = time.perf_counter(), time.process_time()

    def write(partial: dict, complete: bool = False):
        out.write_text(json.dumps(dict(header, complete=complete, total_seconds=round(time.perf_counter() - started, 1),
                                       total_cpu_seconds=round(time.process_time() - cpu_started, 1), **partial),
                                  indent=2))

    result = survey(runner, samplers, settings["sizes"], settings["batch"], settings["time_limit"],
                    settings["floor_replicates"], checkpoint=write)
    write(result, complete=True)
    result = json.loads(out.read_text())

    print(f"\nComfyUI {result['comfyui']}; {STEPS} steps; cells: global / local error (0 best); "
          f"calls: model evaluations per sample (per column where they differ)")
    for pixels, f in result["exact_floor"].items():
        print(f"exact sampler at {pixels}², batch {f['batch']}: global {f['mean']:.3f} ± {f['std']:.3f} "
              f"(95th percentile {f['p95']:.3f})")
    print(table(result))
    print(f"written to {out}  ({result['total_seconds']:.0f} s, {result['total_cpu_seconds']:.0f} s CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
