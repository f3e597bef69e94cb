"""What Load Checkpoint (reads training metadata) costs next to ComfyUI's Load Checkpoint.

Run: python3 -m tools loadercost [--repeats N]

Both loaders run in-process on the same tiny detectable SDXL checkpoints (tools/tiny_checkpoints.py), one
whose keys ComfyUI reads (returned as loaded) and one that only metadata marks as v-pred ZTSNR
(reconfigured), alternating, median of N; the ratio ours / core is printed. The pack's loader calls
ComfyUI's load path unchanged and adds a header read and, when the file disagrees with ComfyUI's
detection, one model_sampling patch: so the extra cost is absolute, not proportional to the file. It is
timed on its own on a header with the real key names and shapes of an all-in-one SDXL checkpoint
(UNet from ComfyUI's own SDXL config, built on the meta device), whose parse is what grows with a real file.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tools import host


def timed(function, repeats: int) -> float:
    """Median wall time of `function()` over `repeats` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sdxl_header_file(path: Path) -> tuple[int, int]:
    """A safetensors header (no tensor data) with an all-in-one SDXL checkpoint's real UNet key names and
    shapes (fp16) plus CLIP-L/G and VAE-sized name sets; returns (tensors, header bytes)."""
    import torch

    import comfy.supported_models
    detected = {"use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
                "num_classes": "sequential", "in_channels": 4, "out_channels": 4, "num_res_blocks": [2, 2, 2],
                "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10], "channel_mult": [1, 2, 4],
                "transformer_depth_middle": 10, "use_temporal_resblock": False}
    config = comfy.supported_models.SDXL({**comfy.supported_models.SDXL.unet_config, **detected})
    config.set_inference_dtype(torch.float16, None)
    with torch.device("meta"):
        unet = config.get_model({}, "", device=torch.device("meta")).diffusion_model.state_dict()
    shapes = {f"model.diffusion_model.{k}": list(v.shape) for k, v in unet.items()}
    # CLIP-L (197 tensors), CLIP-G (517) and the VAE (248) of the public SDXL file, by count and name length.
    for prefix, count in (("conditioner.embedders.0.transformer.text_model.encoder.layers", 197),
                          ("conditioner.embedders.1.model.transformer.resblocks", 517),
                          ("first_stage_model.decoder.up.block", 248)):
        shapes.update({f"{prefix}.{i}.mlp.fc1.weight": [1280, 320] for i in range(count)})
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 2 * int(torch.Size(shape).numel())
        header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = {"modelspec.prediction_type": "v", "ss_zero_terminal_snr": "True"}
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw)
    return len(shapes), len(raw)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    # The test fixture pack registers the tiny configs, so ComfyUI's own detection reads the tiny files.
    base = host.make_base_directory([host.PACK_ROOT / "tests" / "fixtures" / "snrt_test_models"])
    nodes = host.start_in_process(Path(os.environ["SNRT_COMFYUI"]), base)
    from tools import tiny_checkpoints
    folder = base / "models" / "checkpoints"
    tensors = tiny_checkpoints.detectable_tensors("sdxl", seed=0)
    tiny_checkpoints.write_detectable_checkpoint(folder / "keyed.safetensors", tensors, ("v_pred", "ztsnr"))
    tiny_checkpoints.write_detectable_checkpoint(folder / "metadata.safetensors", tensors, (),
                                                 {"modelspec.prediction_type": "v", "ss_zero_terminal_snr": "True"})
    core, ours = nodes.NODE_CLASS_MAPPINGS["CheckpointLoaderSimple"](), nodes.NODE_CLASS_MAPPINGS["SNRTCheckpointLoader"]
    size_mb = (folder / "keyed.safetensors").stat().st_size / 1e6
    print(f"ComfyUI {os.environ.get('SNRT_COMFYUI_VERSION', '?')}, CPU, median of {args.repeats}, "
          f"tiny SDXL checkpoint {size_mb:.0f} MB")
    extra_work = sys.modules[ours.__module__].report_and_model  # what the node adds to the core load
    for name in ("keyed.safetensors", "metadata.safetensors"):
        core.load_checkpoint(name), ours.execute(name)  # warm the page cache and imports
        pairs = []
        for _ in range(args.repeats):  # interleaved, so load drift on a shared machine hits both alike
            pairs.append((timed(lambda: core.load_checkpoint(name), 1), timed(lambda: ours.execute(name), 1)))
        t_core, t_ours = (statistics.median(p[i] for p in pairs) for i in (0, 1))
        model, path = core.load_checkpoint(name)[0], str(folder / name)
        t_extra = timed(lambda: extra_work(name, path, model), args.repeats)
        print(f"  {name:22s} core {t_core * 1e3:7.1f} ms   ours {t_ours * 1e3:7.1f} ms   ratio "
              f"{t_ours / t_core:.3f} (median per pair {statistics.median(o / c for c, o in pairs):.3f});   "
              f"the node's own work: {t_extra * 1e3:.2f} ms")
    import importlib

    from tools.pack import load_pack
    load_pack()
    read_safetensors_header = importlib.import_module("snr_toolkit.schedules.checkpoint_metadata").read_safetensors_header
    with tempfile.TemporaryDirectory() as scratch:
        count, length = sdxl_header_file(Path(scratch) / "sdxl_header.safetensors")
        t_header = timed(lambda: read_safetensors_header(str(Path(scratch) / "sdxl_header.safetensors")),
                         args.repeats * 5)
    print(f"  header read alone, all-in-one SDXL-size header ({count} tensors, {length / 1e3:.0f} kB): "
          f"{t_header * 1e3:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
