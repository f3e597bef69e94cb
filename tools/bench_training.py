"""What the Training Objective node costs inside ComfyUI's own Train LoRA. Run: python3 -m tools trainbench [--quick]

Whole TrainLoraNode runs on a tiny SDXL (real UNet class, random weights) with the same latents, seeds and
settings, once plain and once through SNRTTrainingObjective per configuration. Time is taken in interleaved rounds
(tools.bench.timed_rounds: each round runs every configuration once, in rotating order); a ratio is the median over
rounds of the ratio within a round, with its quartiles; whole runs swing by several per cent on a busy CPU, so the
node's hooks are also timed inside a real run (an upper bound on its cost per step). Peak memory is the peak of live tensor storage during one
run (CUDA's allocator peak on a GPU), compared with one batch of the training noise.

Prints the machine and a table of ratios; writes the same as JSON to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from tools import host
from tools.bench import paired_ratio, peak_memory, quartiles, round_ratios, timed_rounds
from tools.host import PACK_ROOT

STANDARD = "model's standard (ε / v / flow velocity)"
#: Each configuration's SNRTTrainingObjective inputs (the rest at defaults); None = the plain trainer.
CONFIGURATIONS = {
    "plain Train LoRA": None,
    "objective at its defaults": {},
    "Min-SNR-5 + logit-normal": dict(loss_weighting="Min-SNR-γ", timestep_sampling="logit-normal (SD3)"),
    "everything on (MinSNR, mode, window, offset, pyramid, ip)": dict(
        loss_weighting="Min-SNR-γ", timestep_sampling="mode (SD3)", range_min=50.0, range_max=950.0, noise_offset=0.1,
        adaptive_noise_offset=0.05, pyramid_iterations=6, pyramid_discount=0.5, ip_noise_gamma=0.1),
    "v-prediction + ZTSNR, standard loss": dict(loss_weighting=STANDARD, prediction="v_prediction", zsnr="on"),
}


HOOKS = ("__init__", "percent_to_sigma", "noise_scaling", "loss")


def hook_seconds_per_step(run, steps: int) -> float:
    """Seconds a training step spends in the node's hooks (internals.trainer.TrainingRun: setup, σ mapping, noise,
    loss), timed inside one real run. It includes the trainer's own noise_scaling and loss calls the hooks make, so
    1 + this / the plain step is an upper bound on the step time ratio, free of the machine's drift."""
    # The pack as ComfyUI loaded it (under its custom_nodes folder's name), not a second copy.
    trainer = next(m for name, m in sys.modules.items() if name.endswith(".internals.trainer"))
    spent, originals = [0.0], {name: getattr(trainer.TrainingRun, name) for name in HOOKS}

    def timed(function):
        def call(*a, **k):
            start = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                spent[0] += time.perf_counter() - start
        return call
    for name, function in originals.items():
        setattr(trainer.TrainingRun, name, timed(function))
    try:
        run()
    finally:
        for name, function in originals.items():
            setattr(trainer.TrainingRun, name, function)
    return spent[0] / steps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and steps (a smoke run)")
    parser.add_argument("--steps", type=int, default=12, help="training steps per run")
    parser.add_argument("--batch", type=int, default=2, help="Train LoRA batch size")
    parser.add_argument("--latent", type=int, default=32, help="latent side (32 → 256×256 pixels)")
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats = 3, 2
    from tools import training
    comfy = Path(os.environ["SNRT_COMFYUI"])
    base = host.make_base_directory()
    nodes = host.start_in_process(comfy, base)
    import comfy.utils
    comfy.utils.set_progress_bar_enabled(False)
    model, clip, _ = training.load_tiny_checkpoint(nodes, base, "sdxl")
    positive = training.conditioning("sdxl", clip)
    generator = torch.Generator().manual_seed(0)
    latents = [torch.randn(4, args.latent, args.latent, generator=generator) for _ in range(2 * args.batch)]

    def run_for(settings):
        trained = model if settings is None else training.with_objective(nodes, model, **settings)

        def run():
            return training.train(nodes, trained, latents, positive, batch_size=args.batch, steps=args.steps)
        return run
    runs = {name: run_for(settings) for name, settings in CONFIGURATIONS.items()}
    samples = timed_rounds(runs, args.repeats)
    hooks = {name: hook_seconds_per_step(run, args.steps) for name, run in runs.items()}
    peaks = {name: peak_memory(run) for name, run in runs.items()}
    plain = "plain Train LoRA"
    noise_batch = args.batch * 4 * args.latent ** 2 * 4  # one batch of fp32 training noise, bytes
    rows = []
    for name in runs:
        low, high = quartiles(round_ratios(samples, name, plain))
        rows.append(dict(name=name, settings=CONFIGURATIONS[name],
                         seconds_per_step=sorted(samples[name])[len(samples[name]) // 2] / args.steps,
                         time_ratio=paired_ratio(samples, name, plain), time_ratio_quartiles=[low, high],
                         hook_seconds_per_step=hooks[name],
                         hook_ratio=1 + hooks[name] / (statistics.median(samples[plain]) / args.steps),
                         peak_bytes=peaks[name], memory_ratio=peaks[name] / peaks[plain],
                         memory_extra_noise_batches=(peaks[name] - peaks[plain]) / noise_batch))
    device = (torch.cuda.get_device_name() if torch.cuda.is_available()
              else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)")
    header = dict(date=datetime.date.today().isoformat(), device=device, torch=torch.__version__,
                  comfyui=os.environ.get("SNRT_COMFYUI_VERSION", str(comfy)), args=vars(args),
                  noise_batch_bytes=noise_batch)
    print(f"\nTraining Objective cost — {header['date']} — {device} — torch {header['torch']} — ComfyUI "
          f"{header['comfyui']}\nTrain LoRA on a tiny SDXL, latent {args.latent}², batch {args.batch}, {args.steps} "
          f"steps a run, {args.repeats} interleaved rounds (time ×: median of per-round ratios to the plain trainer)\n")
    print(f"{'configuration':58} {'s/step':>7} {'time ×':>7} {'(quartiles)':>13} {'hooks µs':>9} {'bound ×':>8} "
          f"{'peak MiB':>9} {'mem ×':>7} {'Δ noise batches':>16}")
    for row in rows:
        low, high = row["time_ratio_quartiles"]
        print(f"{row['name']:58} {row['seconds_per_step']:7.3f} {row['time_ratio']:7.3f} {low:6.3f}–{high:<6.3f} "
              f"{row['hook_seconds_per_step'] * 1e6:9.0f} {row['hook_ratio']:8.4f} "
              f"{row['peak_bytes'] / 2**20:9.2f} {row['memory_ratio']:7.4f} {row['memory_extra_noise_batches']:16.2f}")
    print("\ntime ×: whole runs, which swing by several per cent on a busy CPU; bound ×: 1 + the node's hooks per step "
          "(timed inside a run, the trainer's own noising and loss calls included) / the plain step: an upper bound "
          "on the node's cost")
    out = PACK_ROOT / "benchmarks" / "results" / (
        f"train-bench-{header['date']}-{'cuda' if torch.cuda.is_available() else 'cpu'}-comfyui-{header['comfyui']}"
        f"{'-quick' if args.quick else ''}.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(dict(header, rows=rows), indent=2))
    print(f"\nwritten to {out.relative_to(PACK_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
