"""The training demo: what the sources claim about training, reproduced with ComfyUI's own Train LoRA node.

Run: python3 -m tools traindemo [--quick] [--seeds N] [--steps N] [--workers N]

A tiny network of SDXL's UNet topology (3 levels, 32–64 channels, LDM's zero-initialised output convolutions,
random weights otherwise) is trained from scratch through LoRA + bias adapters by TrainLoraNode, on latents of
a known distribution: black, grey and white images (±2 or 0 on three latent channels, equally likely) with
texture of std 0.3, 8×8 latents, contrast 2 (fixed before the final run; see docs/training.md). Each variant sets only SNRTTrainingObjective; data, network, optimiser and
seeds are the same for all. After training, the LoRA is loaded with ComfyUI's LoraModelLoader and sampled with
SamplerCustomAdvanced (dpmpp_2m, 20 steps): ε models from their σ_max 14.6 (karras), the v-prediction + ZTSNR
model with V-Prediction / ZTSNR and ztsnr_exponential from its terminal σ. Every sample set is judged by the same
numbers: black+white (share of samples in the black or white mode, true 2/3), brightness reached (lowest and
highest sample mean), global (mode-frequency error) and local (within-mode texture error). Checkpoints during
training are snapshots of the trainer's own LoRA parameters, read through its loss callback.

Writes benchmarks/results/training-demo-<date>.json and docs/training/demo.png.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from tools.host import PACK_ROOT

SIDE = 8            # latent side; the data: black / grey / white at ±CONTRAST with texture of std SPREAD
CONTRAST = 2.0
SPREAD = 0.3
DATASET = 64
BATCH = 2           # the trainer runs each sample's conditioning over the whole batch: B² rows a step
RANK = 16
LEARNING_RATE = 2e-3
SAMPLES = 64
SAMPLE_STEPS = 20
#: The network: SDXL's UNet at toy width without attention (ComfyUI detects it from its keys).
UNET = dict(use_checkpoint=False, image_size=32, in_channels=4, out_channels=4, model_channels=32,
            num_res_blocks=[1, 1, 1], channel_mult=[1, 1, 2], transformer_depth=[0, 0, 0],
            transformer_depth_output=[0] * 6, transformer_depth_middle=0, use_spatial_transformer=True,
            use_linear_in_transformer=False, legacy=False, context_dim=None, num_classes="sequential",
            adm_in_channels=32 + 6 * 256, use_temporal_attention=False, use_temporal_resblock=False)
STANDARD = "model's standard (ε / v / flow velocity)"
VARIANTS = {
    "ε, standard schedule": dict(loss_weighting=STANDARD),
    "v-prediction + ZTSNR (NovelAI V3)": dict(loss_weighting=STANDARD, prediction="v_prediction", zsnr="on"),
    "ε + offset noise 0.1": dict(loss_weighting=STANDARD, noise_offset=0.1),
    "ε + pyramid noise (6, 0.5)": dict(loss_weighting=STANDARD, pyramid_iterations=6, pyramid_discount=0.5),
    "ε + Min-SNR-5": dict(loss_weighting="Min-SNR-γ", min_snr_gamma=5.0),
}
CONVERGENCE_VARIANTS = ["ε, standard schedule", "ε + Min-SNR-5"]


def dataset(seed: int = 123):
    from tools.ideal_model import GaussianMixture, mode_means
    mixture = GaussianMixture(mode_means(4, SIDE, SIDE, CONTRAST)[:3], SPREAD)
    return mixture, mixture.sample(DATASET, torch.Generator().manual_seed(seed))


def demo_checkpoint_tensors(seed: int = 0):
    """The network's state dict as a checkpoint: N(0, 1/fan_in) weights, LDM's zero_module on the output
    convolutions (each ResBlock's last conv and the final conv), a TAESD VAE and the tiny CLIPs."""
    from tools import tiny_checkpoints
    model = tiny_checkpoints.build_diffusion_model("sdxl", UNET, {})
    tiny_checkpoints.initialise(model.diffusion_model, seed)
    state = model.diffusion_model.state_dict()
    for key in state:
        if ".out_layers.3." in key or key.startswith("out.2."):
            state[key] = torch.zeros_like(state[key])
    tensors = tiny_checkpoints.detectable_tensors("sdxl", seed=seed)
    tensors = {k: v for k, v in tensors.items() if not k.startswith("model.diffusion_model.")}
    tensors.update({"model.diffusion_model." + k: v.float().contiguous() for k, v in state.items()})
    return tensors


def register_demo_config():
    """Put a config for the demo network first in ComfyUI's detection list (idempotent)."""
    import comfy.supported_models
    from tools import tiny_checkpoints
    tiny_checkpoints.register_detectable_configs()
    if not any(c.__name__ == "DemoTinySDXL" for c in comfy.supported_models.models):
        detected = {k: v for k, v in UNET.items()}
        config = type("DemoTinySDXL", (tiny_checkpoints.DetectableTinySDXL,), {"unet_config": detected,
                                                                              "unet_extra_config": {"num_heads": -1, "num_head_channels": 32}})
        comfy.supported_models.models.insert(0, config)


class Snapshots:
    """An OUTER_SAMPLE wrapper that keeps the trainer's LoRA parameters after the given steps: at the loss callback
    of step k + 1 its optimiser has stepped k times (its parameters in the order of the LoRA dict it returns)."""

    def __init__(self, steps: list[int]):
        self.wanted, self.kept = set(steps), {}

    def __call__(self, executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        if hasattr(sampler, "loss_callback") and hasattr(sampler, "optimizer"):
            callback, calls = sampler.loss_callback, [0]
            params = [p for group in sampler.optimizer.param_groups for p in group["params"]]

            def keep(loss):
                if calls[0] in self.wanted:
                    self.kept[calls[0]] = [p.detach().clone() for p in params]
                calls[0] += 1
                if callback:
                    callback(loss)
            sampler.loss_callback = keep
        return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)


def sample_set(nodes, model, lora, variant: dict, positive, seed: int = 1):
    """64 samples (model space) from the base model with `lora`, sampled as the variant's model is meant to be."""
    from tools.training import node_output
    node = nodes.NODE_CLASS_MAPPINGS
    with torch.inference_mode():
        patched = node_output(node["LoraModelLoader"].execute(model, lora, 1.0))[0]
        ztsnr = variant.get("zsnr") == "on"
        if ztsnr:
            patched = node_output(node["SNRTVPrediction"].execute(patched, "v_prediction", "on", "ComfyUI (4518.76)",
                                                                  False))[0]
        sigmas = node_output(node["BasicScheduler"].execute(patched, "ztsnr_exponential" if ztsnr else "karras",
                                                            SAMPLE_STEPS, 1.0))[0]
        guider = node_output(node["CFGGuider"].execute(patched, positive, positive, 1.0))[0]
        noise = node_output(node["RandomNoise"].execute(seed))[0]
        sampler = node_output(node["KSamplerSelect"].execute("dpmpp_2m"))[0]
        latent = {"samples": torch.full((SAMPLES, 4, SIDE, SIDE), 0.01)}
        out = node_output(node["SamplerCustomAdvanced"].execute(noise, guider, sampler, sigmas, latent))[0]["samples"]
    return patched.model.process_latent_in(out).float()


def judge(mixture, samples) -> dict:
    from tools.ideal_model import global_error, local_error, mode_share
    brightness = samples[:, :3].mean((1, 2, 3))
    return {"black_white": mode_share(mixture, samples), "darkest": float(brightness.min()),
            "brightest": float(brightness.max()), "global": global_error(mixture, samples),
            "local": local_error(mixture, samples)}


def run_worker(jobs: list[dict], steps: int, out: Path, learning_rate: float = LEARNING_RATE, rank: int = RANK) -> None:
    """Train and judge the given (variant, seed) jobs in this process (ComfyUI in-process, one torch thread)."""
    torch.set_num_threads(1)
    from tools import host, training
    base = host.make_base_directory()
    nodes = host.start_in_process(Path(os.environ["SNRT_COMFYUI"]), base)
    import comfy.patcher_extension
    import comfy.utils
    comfy.utils.set_progress_bar_enabled(False)
    register_demo_config()
    model, clip, _ = training.load_tiny_checkpoint(nodes, base, "sdxl", name="snrt_training_demo.safetensors",
                                                   tensors=demo_checkpoint_tensors())
    positive = training.conditioning("sdxl", clip)
    mixture, data = dataset()
    latents = [d / model.model.latent_format.scale_factor for d in data]
    checkpoints = sorted({max(1, steps // 8), steps // 4, steps // 2})
    results = []
    for job in jobs:
        variant = VARIANTS[job["variant"]]
        snapshots = Snapshots(checkpoints)
        spied = model.clone()
        spied.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, "snrt_demo_snapshots", snapshots)
        trained = training.with_objective(nodes, spied, **variant)
        lora, losses = training.train(nodes, trained, latents, positive, global_seed=job["seed"], seed=job["seed"],
                                      batch_size=BATCH, steps=steps, learning_rate=learning_rate, rank=rank)
        curve = []
        for step in checkpoints:
            state = dict(zip(lora, snapshots.kept[step]))
            curve.append({"step": step, **judge(mixture, sample_set(nodes, model, state, variant, positive))})
        final = sample_set(nodes, model, lora, variant, positive)
        curve.append({"step": steps, **judge(mixture, final)})
        results.append({**job, "curve": curve, "final_loss": sum(losses[-20:]) / len(losses[-20:]),
                        "samples": final[:12, :3].tolist()})
        print(f"[traindemo] {job['variant']} seed {job['seed']}: " +
              ", ".join(f"{k} {v:.3f}" for k, v in curve[-1].items() if k != "step"), flush=True)
    out.write_text(json.dumps(results))


def spread(values: list[float]) -> str:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1))
    return f"{mean:.3f} ± {std:.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few steps, one seed (for the test suite)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per run (default 600; quick 30)")
    parser.add_argument("--seeds", type=int, default=None, help="training seeds per variant (default 3; quick 1)")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (default 2: the CPU cores here)")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), help="which variants (default all)")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default benchmarks/results/)")
    parser.add_argument("--figure", type=Path, default=PACK_ROOT / "docs" / "training" / "demo.png")
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE, help=f"AdamW's (default {LEARNING_RATE})")
    parser.add_argument("--rank", type=int, default=RANK, help=f"LoRA rank (default {RANK})")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    steps = args.steps or (30 if args.quick else 600)
    seeds = args.seeds or (1 if args.quick else 3)
    if args.worker:
        spec = json.loads(args.worker.read_text())
        run_worker(spec["jobs"], spec["steps"], Path(spec["out"]), spec["learning_rate"], spec["rank"])
        return 0
    jobs = [{"variant": v, "seed": s} for s in range(seeds) for v in args.variants]
    scratch = Path(tempfile.mkdtemp(prefix="snrt-traindemo-"))
    workers = []
    for w in range(max(1, min(args.workers, len(jobs)))):
        spec = scratch / f"worker{w}.json"
        spec.write_text(json.dumps({"jobs": jobs[w::args.workers], "steps": steps, "out": str(scratch / f"out{w}.json"),
                                   "learning_rate": args.learning_rate, "rank": args.rank}))
        workers.append(subprocess.Popen([sys.executable, "-m", "tools.training_demo", "--worker", str(spec)],
                                        cwd=PACK_ROOT))
    if any(p.wait() for p in workers):
        sys.exit("a training demo worker failed")
    results = [r for w in range(len(workers)) for r in json.loads((scratch / f"out{w}.json").read_text())]
    report(results, steps, seeds, args)
    return 0


def report(results, steps, seeds, args) -> None:
    by_variant = {}
    for r in results:
        by_variant.setdefault(r["variant"], []).append(r)
    print(f"\nTraining demo: {steps} steps, batch {BATCH}, {seeds} seed(s) per variant, {SAMPLES} samples each; "
          f"mean ± std over seeds. True data: black+white 0.667, brightness −{CONTRAST:.2f} … +{CONTRAST:.2f}.\n")
    print(f"{'variant':36} {'black+white':>15} {'darkest':>15} {'brightest':>15} {'global':>15} {'local':>15}")
    summary = {}
    for name, runs in by_variant.items():
        final = [r["curve"][-1] for r in runs]
        summary[name] = {k: spread([f[k] for f in final]) for k in ("black_white", "darkest", "brightest", "global",
                                                                    "local")}
        print(f"{name:36} " + " ".join(f"{summary[name][k]:>15}" for k in summary[name]))
    curves = {name: {c["step"]: [r["curve"][i]["local"] for r in runs] for i, c in enumerate(runs[0]["curve"])}
              for name, runs in by_variant.items() if name in CONVERGENCE_VARIANTS}
    if curves:
        print("\nlocal error (within-mode texture; lower is better) by training step, mean over seeds:")
        for name, curve in curves.items():
            print(f"  {name:34} " + "  ".join(f"{step}: {sum(v) / len(v):.3f}" for step, v in curve.items()))
    payload = {"steps": steps, "batch": BATCH, "rank": RANK, "learning_rate": LEARNING_RATE, "dataset": DATASET,
               "latent": [4, SIDE, SIDE], "contrast": CONTRAST, "spread": SPREAD, "samples": SAMPLES,
               "sample_steps": SAMPLE_STEPS, "comfyui": os.environ.get("SNRT_COMFYUI_VERSION", "unknown"),
               "device": "cpu", "variants": VARIANTS, "summary": summary, "runs": results}
    out = args.out or (PACK_ROOT / "benchmarks" / "results" /
                       f"training-demo-{datetime.date.today()}{'-quick' if args.quick else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1))
    figure(by_variant, args.figure)
    print(f"\nwrote {out} and {args.figure}")


def figure(by_variant, path: Path) -> None:
    """One row of samples per variant (first seed) and the local-error curves of the convergence variants."""
    from tools.demo import grid_image
    rows = []
    for name, runs in by_variant.items():
        samples = torch.tensor(runs[0]["samples"])
        # the figure's font has no ε
        rows.append((name.replace("ε", "eps"), (samples / (2 * CONTRAST) + 0.5).clamp(0, 1).permute(0, 2, 3, 1)))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid_image(rows, 12).save(path)


if __name__ == "__main__":
    sys.exit(main())
