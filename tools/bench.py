"""What each node costs, measured through ComfyUI's real sampler. Run: python3 -m tools bench [--quick]

1. Skip Layer Guidance on a 24-block MMDiT with SD 3.5 Medium's topology (narrowed to run on a CPU):
   per-step time, FLOPs and peak tensor memory of plain CFG, ComfyUI's SkipLayerGuidanceSD3 (same
   layers and scale), and ours inside and outside the window. Time is taken in interleaved rounds; a
   ratio is the median over rounds of the ratio within a round (with its quartiles), so the machine's
   drift cancels. FLOPs (matrix multiplies and attention) are the work itself, exact on any machine. Outside the window all
   make plain CFG's model calls (checked), so the nodes' own hooks are also timed alone, inside real
   samples, and compared with ComfyUI's.
2. Per-sample cost of SNRTScheduler, SNRTVPrediction, SNRTSigmaMaxScale and SNRTPyramidNoise against
   the ComfyUI node that does the same job, on a tiny SDXL: whole samples (interleaved rounds as
   above, which still swing by several per cent on a busy CPU), and the same comparison taken apart.
   Both sides of a pair make as many diffusion-model calls on the same shapes (checked), so a
   sample differs only by the nodes' own work: building the patch, the sigmas, the noise, and the
   model_sampling methods each step calls. That work is timed alone with many repeats, and
   ratio = (their sample + our work − their work) / their sample.

Prints the machine, the date and a table; writes the same as JSON to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
import weakref
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode
from torch.utils._pytree import tree_leaves

from tools.host import PACK_ROOT as ROOT
from tools import host

SLG_LAYERS, SLG_SCALE, CFG = "7, 8, 9", 2.5, 4.0


class PeakTensorMemory(TorchDispatchMode):
    """Peak bytes of live tensor storage created inside the block (CPU has no allocator statistics)."""

    def __enter__(self):
        self.live = self.peak = 0
        self.storages = {}
        return super().__enter__()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                key, size = storage.data_ptr(), storage.nbytes()
                if not size:
                    continue
                entry = self.storages.setdefault(key, [0, size])
                if entry[0] == 0:
                    self.live += size
                    self.peak = max(self.peak, self.live)
                entry[0] += 1
                weakref.finalize(tensor, self._release, key)
        return out

    def _release(self, key):
        entry = self.storages.get(key)
        if entry:
            entry[0] -= 1
            if entry[0] == 0:
                self.live -= entry[1]
                del self.storages[key]


def timed_rounds(runs: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of each run in each of `repeats` rounds. Every round runs each once, in an order that
    rotates, so drift and position in the round hit all alike (one warm-up each)."""
    for run in runs.values():
        run()
    samples = {name: [] for name in runs}
    names = list(runs)
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            runs[name]()
            samples[name].append(time.perf_counter() - start)
    return samples


def round_ratios(samples: dict[str, list[float]], name: str, base: str) -> list[float]:
    """name's time / base's time within each round: slow drift of the machine cancels in a round."""
    return [a / b for a, b in zip(samples[name], samples[base])]


def paired_ratio(samples: dict[str, list[float]], name: str, base: str) -> float:
    """Median over rounds of the within-round ratio."""
    return statistics.median(round_ratios(samples, name, base))


def quartiles(values: list[float]) -> tuple[float, float]:
    low, _, high = statistics.quantiles(values, n=4, method="inclusive")
    return low, high


def flop_count(run) -> int:
    """Matrix-multiply and attention FLOPs of one run (torch's FlopCounterMode): the work itself,
    which unlike time does not move with the machine's load."""
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def peak_memory(run) -> int:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with PeakTensorMemory() as tracker:
        run()
    return tracker.peak


def sampler(nodes, model, positive, negative, sigmas, latent, noise=None, sampler_name="euler"):
    mapping = nodes.NODE_CLASS_MAPPINGS
    noise = noise or mapping["RandomNoise"].execute(1)[0]
    guider = mapping["CFGGuider"].execute(model, positive, negative, CFG)[0]
    sampler_object = mapping["KSamplerSelect"].execute(sampler_name)[0]

    def run():
        with torch.no_grad():
            return mapping["SamplerCustomAdvanced"].execute(noise, guider, sampler_object, sigmas, latent)[0]
    return run


def bench_slg(nodes, tiny_models, args) -> list[dict]:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    mapping = nodes.NODE_CLASS_MAPPINGS
    model = tiny_models.tiny_sd3_medium(num_blocks=24, depth=args.depth)
    if device == "cuda":
        model.load_device = torch.device("cuda")
    generator = torch.Generator().manual_seed(0)
    cond = lambda: [[torch.randn(1, 77, 4096, generator=generator) * 0.1,  # noqa: E731
                     {"pooled_output": torch.randn(1, 2048, generator=generator) * 0.1}]]
    positive, negative = cond(), cond()
    latent = {"samples": torch.zeros(1, 16, args.latent, args.latent)}
    sigmas = mapping["BasicScheduler"].execute(model, "simple", args.steps, 1.0)[0]
    ours = mapping["SNRTSkipLayerGuidance"].execute
    # Windows that hold every step (sigma percent 0…1) or none (a step window past the last step).
    configs = {
        "plain CFG": model,
        "ComfyUI SkipLayerGuidanceSD3": mapping["SkipLayerGuidanceSD3"].execute(model, SLG_LAYERS, SLG_SCALE, 0.0,
                                                                               1.0)[0],
        "ours, inside the window": ours(model, "custom", SLG_LAYERS, SLG_SCALE, 0.0, 1.0, "sigma percent", True)[0],
        "ours, inside, plain path": ours(model, "custom", SLG_LAYERS, SLG_SCALE, 0.0, 1.0, "sigma percent", False)[0],
        "ours, outside the window": ours(model, "custom", SLG_LAYERS, SLG_SCALE, 0.98, 0.99, "step fraction", True)[0],
        "ComfyUI SkipLayerGuidanceSD3, outside": mapping["SkipLayerGuidanceSD3"].execute(model, SLG_LAYERS, SLG_SCALE,
                                                                                        0.98, 0.99)[0],
    }
    runs = {name: sampler(nodes, m, positive, negative, sigmas, latent) for name, m in configs.items()}
    outside = ["plain CFG", "ours, outside the window", "ComfyUI SkipLayerGuidanceSD3, outside"]
    calls = [model_calls(runs[name]) for name in outside]
    assert calls[0] == calls[1] == calls[2] and len(calls[0]) == args.steps, "outside the window: plain CFG's calls only"
    samples = timed_rounds(runs, args.repeats)
    times = {name: statistics.median(values) for name, values in samples.items()}
    memory = {name: peak_memory(run) for name, run in runs.items()}
    flops = {name: flop_count(run) for name, run in runs.items()}
    base_t, base_m, base_f = times["plain CFG"], memory["plain CFG"], flops["plain CFG"]
    rows = [dict(group="SLG per step", name=name, seconds_per_step=times[name] / args.steps,
                 time_ratio=paired_ratio(samples, name, "plain CFG"),
                 time_ratio_quartiles=quartiles(round_ratios(samples, name, "plain CFG")),
                 flops=flops[name], flop_ratio=flops[name] / base_f,
                 peak_bytes=memory[name], memory_ratio=memory[name] / base_m) for name in configs]
    hooks = {name: hook_seconds(configs[name], sampler_for=lambda m: sampler(nodes, m, positive, negative, sigmas,
                                                                               latent), samples=args.repeats)
             for name in outside[1:]}
    ours_s, theirs_s = (hooks[name] / args.steps for name in outside[1:])
    base_step = base_t / args.steps
    rows.append(dict(group="SLG outside, hook work", name="ours vs ComfyUI SkipLayerGuidanceSD3, outside",
                     hook_seconds_per_step_ours=ours_s, hook_seconds_per_step_theirs=theirs_s,
                     work_ratio=(base_step + ours_s) / (base_step + theirs_s)))
    return rows


#: tools.tiny_dits family → ComfyUI SkipLayerGuidanceDiT's default layers where the family has them (double,
#: single). AuraFlow has 4 double layers: its single 7–9 sit at the same depth.
FAMILY_LAYERS = {"aura_flow": ("", "7, 8, 9")}


def bench_slg_families(nodes, args) -> list[dict]:
    """Every DiT family at toy width: plain CFG, ComfyUI's SkipLayerGuidanceDiT, ours (fast and plain path),
    same layers, every step inside the window; with the ideal ratio of a fork beside them."""
    from tools import tiny_dits
    from tools.pack import load_pack
    load_pack("snr_toolkit")
    from snr_toolkit.samplers.slg_presets import SLGSettings, blocks_run_by_branch
    mapping = nodes.NODE_CLASS_MAPPINGS
    rows = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # toy widths gain nothing from threads; keeps a shared CPU's noise down
    try:
        door = nodes_pack_door(nodes)
        for family, (build, conditioning, make_latent) in tiny_dits.FAMILIES.items():
            if next(f for f in door.FAMILIES if f.name == tiny_dits.DOOR_FAMILY[family]).model_class() is None:
                print(f"SLG per family: {family} is not in this ComfyUI, left out")
                continue
            model = build()
            double, single = FAMILY_LAYERS.get(family, ("7, 8, 9", "7, 8, 9"))
            dit = door.dit_family(model, "bench")
            counts = door.block_counts(model, dit)
            parse = lambda text, count: tuple(int(n) for n in text.replace(" ", "").split(",") if n and int(n) < count)  # noqa: E731
            settings = SLGSettings(parse(double, counts["double_block"]), 3.0, 0.0, 1.0, "sigma percent",
                                   parse(single, counts["single_block"]))
            total = counts["double_block"] + counts["single_block"]
            ideal = 1 + blocks_run_by_branch(settings, counts) / (2 * total)
            sigmas = mapping["BasicScheduler"].execute(model, "simple", args.family_steps, 1.0)[0]
            latent = {"samples": make_latent(0)}
            positive, negative = conditioning(seed=1), conditioning(seed=3)
            ours = mapping["SNRTSkipLayerGuidance"].execute
            our_single = single if counts["single_block"] else ""  # ours refuses single layers a family lacks
            configs = {
                "plain CFG": model,
                "ComfyUI SkipLayerGuidanceDiT": mapping["SkipLayerGuidanceDiT"].execute(
                    model, 3.0, 0.0, 1.0, double, single, 0.0)[0],
                "ours": ours(model, "custom", double, 3.0, 0.0, 1.0, "sigma percent", True, our_single)[0],
                "ours, plain path": ours(model, "custom", double, 3.0, 0.0, 1.0, "sigma percent", False,
                                         our_single)[0],
            }
            runs = {name: sampler(nodes, m, positive, negative, sigmas, latent) for name, m in configs.items()}
            samples = timed_rounds(runs, args.repeats)
            flops = {name: flop_count(run) for name, run in runs.items()}
            memory = {name: peak_memory(run) for name, run in runs.items()}
            for name in configs:
                rows.append(dict(group="SLG per family", family=dit.name, tiny=family, name=name,
                                 blocks=total, double=double, single=single if counts["single_block"] else "",
                                 ideal_ratio=ideal, flop_ratio=flops[name] / flops["plain CFG"],
                                 time_ratio=paired_ratio(samples, name, "plain CFG"),
                                 memory_ratio=memory[name] / memory["plain CFG"]))
    finally:
        torch.set_num_threads(threads)
    return rows


def nodes_pack_door(nodes):
    """The pack's internals.dit as ComfyUI loaded it."""
    import sys as _sys
    return next(module for name, module in _sys.modules.items() if name.endswith("snr_toolkit.internals.dit")
                and hasattr(module, "dit_family"))


def hook_seconds(model, sampler_for, samples: int) -> float:
    """Median seconds per sample spent in the model's own sampling hooks (post-CFG functions, and
    block replace patches less the joint blocks they run), timed inside real samples."""
    timed = model.clone()
    options = timed.model_options
    spent, in_blocks = [0.0], [0.0]

    def post_cfg(fn):
        def timed_fn(args):
            start = time.perf_counter()
            out = fn(args)
            spent[0] += time.perf_counter() - start
            return out
        return timed_fn

    def block_patch(patch):
        def timed_patch(args, extra):
            blocks_before = in_blocks[0]
            start = time.perf_counter()
            out = patch(args, extra)
            spent[0] += time.perf_counter() - start - (in_blocks[0] - blocks_before)
            return out
        timed_patch.__dict__.update(patch.__dict__)
        return timed_patch

    def block_forward(forward):
        def timed_forward(*args, **kwargs):
            start = time.perf_counter()
            out = forward(*args, **kwargs)
            in_blocks[0] += time.perf_counter() - start
            return out
        return timed_forward

    options["sampler_post_cfg_function"] = [post_cfg(fn) for fn in options.get("sampler_post_cfg_function", [])]
    transformer_options = options.setdefault("transformer_options", {})
    replace = transformer_options.get("patches_replace", {})
    transformer_options["patches_replace"] = {kind: {key: block_patch(patch) for key, patch in patches.items()}
                                              for kind, patches in replace.items()}
    blocks = timed.model.diffusion_model.joint_blocks
    for block in blocks:
        block.forward = block_forward(block.forward)
    try:
        run = sampler_for(timed)
        run()
        per_sample = []
        for _ in range(samples):
            spent[0] = 0.0
            run()
            per_sample.append(spent[0])
    finally:
        for block in blocks:
            del block.forward  # back to the class's method
    return statistics.median(per_sample)


def bench_nodes(nodes, tiny_models, args) -> list[dict]:
    mapping = nodes.NODE_CLASS_MAPPINGS
    steps, size = args.node_steps, args.latent
    noob = tiny_models.tiny_sdxl(v_pred=True, ztsnr=True)
    plain = tiny_models.tiny_sdxl(v_pred=False, ztsnr=False)
    positive, negative = tiny_models.sdxl_conditioning(seed=1), tiny_models.sdxl_conditioning(seed=2)
    latent = {"samples": torch.zeros(1, 4, size, size)}

    def sample_with(model, sigmas_fn, noise=None):
        def run():
            sampler(nodes, model, positive, negative, sigmas_fn(), latent, noise)()
        return run
    basic = lambda model, name: lambda: mapping["BasicScheduler"].execute(model, name, steps, 1.0)[0]  # noqa: E731
    pairs = {
        "SNRTScheduler vs BasicScheduler": (
            sample_with(noob, lambda: mapping["SNRTScheduler"].execute(noob, steps, "karras", "infinite (20000)",
                                                                       14.614642, 1.0, None)[0]),
            sample_with(noob, basic(noob, "karras"))),
        "SNRTVPrediction vs ModelSamplingDiscrete": (
            lambda: sample_with(mapping["SNRTVPrediction"].execute(plain, "v_prediction", "on", "ComfyUI (4518.76)",
                                                                   False)[0], basic(noob, "karras"))(),
            lambda: sample_with(mapping["ModelSamplingDiscrete"]().patch(plain, "v_prediction", True)[0],
                                basic(noob, "karras"))()),
        "SNRTSigmaMaxScale vs KarrasScheduler(σ_max)": (
            lambda: sample_with(mapping["SNRTSigmaMaxScale"].execute(plain, 2048, 2048, 0, None)[0],
                                basic(plain, "karras"))(),
            sample_with(plain, lambda: mapping["KarrasScheduler"].execute(steps, 2 * 14.614642, 0.0291675, 7.0)[0])),
        "SNRTPyramidNoise vs RandomNoise": (
            sample_with(plain, basic(plain, "karras"), mapping["SNRTPyramidNoise"].execute(1, 6, 0.3, 0.1)[0]),
            sample_with(plain, basic(plain, "karras"), mapping["RandomNoise"].execute(1)[0])),
    }
    rows = []
    work = node_work(mapping, noob, plain, latent, steps)
    for name, (ours, theirs) in pairs.items():
        calls_ours, calls_theirs = model_calls(ours), model_calls(theirs)
        assert calls_ours == calls_theirs, f"{name}: the two samples call the model differently"
        samples = timed_rounds({"ours": ours, "theirs": theirs}, args.repeats)
        times = {side: statistics.median(values) for side, values in samples.items()}
        work_ours, work_theirs = work[name]
        rows.append(dict(group="per sample", name=name, seconds_ours=times["ours"], seconds_theirs=times["theirs"],
                         time_ratio=paired_ratio(samples, "ours", "theirs"), model_calls=len(calls_ours),
                         work_seconds_ours=work_ours, work_seconds_theirs=work_theirs,
                         work_ratio=(times["theirs"] + work_ours - work_theirs) / times["theirs"]))
    return rows


def model_calls(run) -> list[tuple]:
    """Input shape of every diffusion-model call one sample makes (a call's cost does not depend on σ)."""
    import comfy.model_base
    calls = []
    original = comfy.model_base.BaseModel._apply_model

    def recording(self, x, t, *args, **kwargs):
        calls.append(tuple(x.shape))
        return original(self, x, t, *args, **kwargs)
    comfy.model_base.BaseModel._apply_model = recording
    try:
        run()
    finally:
        comfy.model_base.BaseModel._apply_model = original
    return calls


def seconds_per_call(fn, budget_s: float = 0.5) -> float:
    """Median seconds of one call of a small function, from 7 batches sized to `budget_s` in all."""
    fn()
    start, count = time.perf_counter(), 0
    while time.perf_counter() - start < budget_s / 7 or count < 3:
        fn()
        count += 1
    batches = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(count):
            fn()
        batches.append((time.perf_counter() - start) / count)
    return statistics.median(batches)


def node_work(mapping, noob, plain, latent, steps) -> dict[str, tuple[float, float]]:
    """Seconds per sample of what each node of a pair does itself: the node call, its sigmas or noise,
    and the model_sampling methods the sampler calls per model call (one call per euler step)."""
    x = torch.randn(latent["samples"].shape)
    basic = mapping["BasicScheduler"].execute

    def per_step(model):
        sampling = model.get_model_object("model_sampling")
        sigma = torch.tensor([3.0])

        def one_step():  # what sampling calls on model_sampling around each model call
            sampling.calculate_input(sigma, x)
            sampling.timestep(sigma)
            sampling.calculate_denoised(sigma.view(-1, 1, 1, 1), x, x)
        return lambda: [one_step() for _ in range(steps)]

    v_ours = mapping["SNRTVPrediction"].execute(plain, "v_prediction", "on", "ComfyUI (4518.76)", False)[0]
    v_theirs = mapping["ModelSamplingDiscrete"]().patch(plain, "v_prediction", True)[0]
    scaled = mapping["SNRTSigmaMaxScale"].execute(plain, 2048, 2048, 0, None)[0]
    pyramid, white = mapping["SNRTPyramidNoise"].execute(1, 6, 0.3, 0.1)[0], mapping["RandomNoise"].execute(1)[0]
    pairs = {
        "SNRTScheduler vs BasicScheduler": (
            lambda: mapping["SNRTScheduler"].execute(noob, steps, "karras", "infinite (20000)", 14.614642, 1.0, None),
            lambda: basic(noob, "karras", steps, 1.0)),
        "SNRTVPrediction vs ModelSamplingDiscrete": (
            lambda: (mapping["SNRTVPrediction"].execute(plain, "v_prediction", "on", "ComfyUI (4518.76)", False),
                     per_step(v_ours)()),
            lambda: (mapping["ModelSamplingDiscrete"]().patch(plain, "v_prediction", True), per_step(v_theirs)())),
        "SNRTSigmaMaxScale vs KarrasScheduler(σ_max)": (
            lambda: (basic(mapping["SNRTSigmaMaxScale"].execute(plain, 2048, 2048, 0, None)[0], "karras", steps, 1.0),
                     per_step(scaled)()),
            lambda: (mapping["KarrasScheduler"].execute(steps, 2 * 14.614642, 0.0291675, 7.0), per_step(plain)())),
        "SNRTPyramidNoise vs RandomNoise": (
            lambda: pyramid.generate_noise(latent), lambda: white.generate_noise(latent)),
    }
    return {name: (seconds_per_call(ours), seconds_per_call(theirs)) for name, (ours, theirs) in pairs.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and steps (a smoke run)")
    parser.add_argument("--depth", type=int, default=4, help="MMDiT width as 64·depth (SD3.5 Medium: 24)")
    parser.add_argument("--latent", type=int, default=32, help="latent side (32 → 256×256 pixels)")
    parser.add_argument("--steps", type=int, default=6, help="sampler steps per SLG run")
    parser.add_argument("--node-steps", type=int, default=20, help="sampler steps per sample in part 2")
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds (each runs every configuration once)")
    parser.add_argument("--family-steps", type=int, default=3, help="sampler steps per run in the per-family SLG part")
    parser.add_argument("--only", choices=["slg", "families", "nodes"], help="run one part")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.steps, args.node_steps, args.depth, args.family_steps = 2, 3, 6, 2, 2
    import os
    comfy = Path(os.environ["SNRT_COMFYUI"])
    nodes = host.start_in_process(comfy, host.make_base_directory())
    from tools import tiny_models
    torch.set_grad_enabled(False)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    header = dict(date=datetime.date.today().isoformat(), device=device, torch=torch.__version__,
                  comfyui=os.environ.get("SNRT_COMFYUI_VERSION", str(comfy)), args=vars(args))
    rows = ((bench_slg(nodes, tiny_models, args) if args.only in (None, "slg") else [])
            + (bench_slg_families(nodes, args) if args.only in (None, "families") else [])
            + (bench_nodes(nodes, tiny_models, args) if args.only in (None, "nodes") else []))
    print(f"\nSNR Toolkit benchmark — {header['date']} — {device} — torch {header['torch']} — "
          f"ComfyUI {header['comfyui']}")
    print(f"SLG: 24-block MMDiT, SD3.5 Medium topology at width {64 * args.depth}, latent {args.latent}², "
          f"{args.steps} euler steps, {args.repeats} interleaved rounds (time ×: median of per-round ratios)\n")
    print(f"{'configuration':38} {'s/step':>7} {'time ×':>7} {'(quartiles)':>13} {'FLOPs ×':>8} {'peak MiB':>9} "
          f"{'mem ×':>6}")
    for row in rows:
        if row["group"] == "SLG per step":
            low, high = row["time_ratio_quartiles"]
            print(f"{row['name']:38} {row['seconds_per_step']:7.3f} {row['time_ratio']:7.3f} {low:6.3f}–{high:<6.3f} "
                  f"{row['flop_ratio']:8.3f} {row['peak_bytes'] / 2**20:9.1f} {row['memory_ratio']:6.3f}")
    for row in rows:
        if row["group"] == "SLG outside, hook work":
            print(f"\nSLG outside the window, the node's own hooks per step, timed inside real samples: ours "
                  f"{row['hook_seconds_per_step_ours'] * 1e6:.0f} µs, ComfyUI's {row['hook_seconds_per_step_theirs'] * 1e6:.0f} µs"
                  f" → step time ours / ComfyUI's = {row['work_ratio']:.5f}")
    family_rows = [row for row in rows if row["group"] == "SLG per family"]
    if family_rows:
        print(f"\nSLG per DiT family (tiny real classes, width 64, {args.family_steps} euler steps, every step guided; "
              "ComfyUI's default layers double 7,8,9 + single 7,8,9). ideal = 1 + blocks the fork still runs / "
              "(2 × all blocks)")
        print(f"{'family':13} {'blocks':>6} {'ideal':>6}  {'configuration':30} {'FLOPs ×':>8} {'vs ideal':>8} "
              f"{'time ×':>7} {'mem ×':>6}")
        for row in family_rows:
            if row["name"] == "plain CFG":
                continue
            print(f"{row['family']:13} {row['blocks']:6d} {row['ideal_ratio']:6.3f}  {row['name']:30} "
                  f"{row['flop_ratio']:8.3f} {row['flop_ratio'] / row['ideal_ratio'] - 1:+8.1%} "
                  f"{row['time_ratio']:7.3f} {row['memory_ratio']:6.3f}")
    print(f"\nper sample ({args.node_steps} steps, tiny SDXL, latent {args.latent}²): ours / ComfyUI's equivalent")
    print(f"{'':44} {'whole samples (s)':>27}  {'node work (ms)':>26}")
    print(f"{'pair':44} {'ours':>9} {'theirs':>9} {'ratio':>7}  {'ours':>8} {'theirs':>8} {'ratio':>8}")
    for row in rows:
        if row["group"] == "per sample":
            print(f"{row['name']:44} {row['seconds_ours']:9.4f} {row['seconds_theirs']:9.4f} {row['time_ratio']:7.3f}  "
                  f"{row['work_seconds_ours'] * 1e3:8.3f} {row['work_seconds_theirs'] * 1e3:8.3f} {row['work_ratio']:8.4f}")
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / (f"bench-{header['date']}-{'cuda' if torch.cuda.is_available() else 'cpu'}"
                     f"-comfyui-{header['comfyui']}{'-' + args.only if args.only else ''}{'-quick' if args.quick else ''}.json")
    out.write_text(json.dumps(dict(header, rows=rows), indent=2))
    print(f"\nwritten to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
