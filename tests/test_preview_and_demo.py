"""Preview plots (their content, not just their existence), served locales, and the demo."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from snr_toolkit.samplers import pyramid_noise
from snr_toolkit.schedules import plot

ROOT = Path(__file__).resolve().parent.parent


def test_sigma_plot_puts_every_point_where_the_log_axis_says():
    sigmas = torch.tensor([20000.0, 400.0, 120.0, 30.0, 8.0, 2.0, 0.5, 0.1, 0.03, 0.0])
    image, (points,) = plot.plot_sigmas([sigmas], ["A"], width=960, height=400)
    # The σ panel, computed independently: 60 px from the left, 34 from the top, 400×316.
    low, high = math.log(0.03), math.log(20000.0)
    expected = [(60 + 400 * i / 9, 34 + 316 * (high - math.log(float(s))) / (high - low))
                for i, s in enumerate(sigmas[:-1])]
    assert [c for p in points for c in p] == pytest.approx([c for p in expected for c in p])
    pixels = image.load()
    for x, y in points[1:]:
        assert pixels[round(x), round(y)] == plot.COLOURS[0], (x, y)
    x0, y0 = points[0]
    border = [pixels[round(x0) + dx, round(y0) - 5] for dx in range(-5, 6)]
    assert (200, 0, 0) in border, "the terminal step is boxed in red"
    ys = [y for _, y in points]
    assert ys == sorted(ys), "decreasing sigmas go down the image"


def test_second_schedule_is_drawn_in_its_own_colour_and_no_terminal_box_without_a_jump():
    a = torch.tensor([14.6, 7.0, 3.0, 1.0, 0.3, 0.0])
    b = torch.tensor([10.0, 2.0, 0.5, 0.1, 0.0])
    image, (pa, pb) = plot.plot_sigmas([a, b], ["A", "B"])
    pixels = image.load()
    assert pixels[round(pb[2][0]), round(pb[2][1])] == plot.COLOURS[1]
    assert not plot.is_terminal_step(a) and plot.is_terminal_step(torch.tensor([20000.0, 14.6, 0.0]))
    assert all((200, 0, 0) != pixels[x, y] for x in range(image.width) for y in range(0, image.height, 7))


def test_log_snr_follows_how_the_model_mixes_signal_and_noise():
    # x = a·x₀ + b·ε has SNR (a/b)²: a = 1, b = σ for discrete / EDM models; a = 1 − σ, b = s·σ for flow models.
    for sigma in (0.03, 0.5, 0.9, 14.6):
        assert plot.log_snr(sigma, "sigma") == pytest.approx(math.log((1 / sigma) ** 2))
    for sigma in (0.03, 0.5, 0.9):
        assert plot.log_snr(sigma, "flow") == pytest.approx(math.log(((1 - sigma) / sigma) ** 2))
        assert plot.log_snr(sigma, "flow", 8.0) == pytest.approx(math.log(((1 - sigma) / (8 * sigma)) ** 2))
    assert plot.log_snr(0.5, "flow") == 0.0 != plot.log_snr(0.5, "sigma")  # SNR 1 at σ 0.5 on a flow model
    assert plot.log_snr(1.0, "flow") == -math.inf  # pure noise
    assert plot.log_snr_formula("flow") == "2 ln((1-sigma)/sigma)" and plot.log_snr_formula("sigma") == "-2 ln(sigma)"
    with pytest.raises(ValueError, match="form"):
        plot.log_snr(0.5, "edm")


def snr_panel_points(schedules, forms, scale=1.0):
    """Each schedule's log-SNR panel points, computed independently: 540 px from the left, 34 from the top,
    400×316, the y range shared by all schedules."""
    kept = [[(i, plot.log_snr(float(s), form, scale)) for i, s in enumerate(sigmas[:-1])]
            for sigmas, form in zip(schedules, forms)]
    kept = [[(i, v) for i, v in values if math.isfinite(v)] for values in kept]
    low, high = min(v for values in kept for _, v in values), max(v for values in kept for _, v in values)
    return [[(540 + 400 * i / (len(sigmas) - 1), 34 + 316 * (high - v) / (high - low)) for i, v in values]
            for sigmas, values in zip(schedules, kept)]


def test_flow_schedule_is_plotted_with_the_flow_log_snr_and_sigma_one_left_off():
    sigmas = torch.tensor([1.0, 0.95, 0.8, 0.6, 0.4, 0.2, 0.05, 0.0])
    flow, _ = plot.plot_sigmas([sigmas], ["flow"], forms=["flow"])
    assumed, _ = plot.plot_sigmas([sigmas], ["flow"])
    pixels, other = flow.load(), assumed.load()
    (points,) = snr_panel_points([sigmas], ["flow"])
    assert len(points) == 6, "σ 1 (SNR 0, log-SNR −∞) is not drawn"
    for x, y in points:
        assert pixels[round(x), round(y)] == plot.COLOURS[0], (x, y)
    # −2·ln σ puts the same steps elsewhere: σ 0.6's point is not on the assumed plot's curve.
    x, y = points[2]
    assert other[round(x), round(y)] != plot.COLOURS[0]
    assert flow.tobytes() != assumed.tobytes()


def test_radial_spectrum_of_white_noise_is_flat_and_pyramid_noise_lifts_low_frequencies():
    white = torch.randn(4, 64, 64, generator=torch.Generator().manual_seed(0))
    spectrum = plot.radial_power_spectrum(white)
    assert float(spectrum[2:30].mean()) == pytest.approx(1.0, abs=0.1)
    pyramid = pyramid_noise.pyramid_noise(white[None], seed=0, discount=0.5)[0]
    lifted = plot.radial_power_spectrum(pyramid)
    # Coarse check of the plot helper; band by band against the published loop: tests/test_noise_spectrum.py.
    assert float(lifted[1:4].mean()) > 2 * float(spectrum[1:4].mean())


def test_preview_nodes_return_images(comfy_host):
    sigmas = torch.tensor([20000.0, 400.0, 30.0, 1.0, 0.03, 0.0])
    image = comfy_host.node("SNRTPreviewSigmas").execute(sigmas, "A", "B", sigmas * 0.5)[0]
    assert image.shape == (1, 400, 960, 3) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    noise = comfy_host.node("SNRTPyramidNoise").execute(1, 6, 0.5, 0.1)[0]
    preview = comfy_host.node("SNRTPreviewNoise").execute(noise, {"samples": torch.zeros(1, 16, 5, 32, 32)})[0]
    assert preview.shape == (1, 400, 800, 3)
    with pytest.raises(ValueError, match="at least two sigmas"):
        comfy_host.node("SNRTPreviewSigmas").execute(torch.tensor([1.0]), "A", "B", None)


def comfyui_log_snr(model_sampling, sigma: float) -> float:
    """log (a/b)² for ComfyUI's own noise_scaling(σ, ε, x₀) = a·x₀ + b·ε, read off with unit inputs."""
    ones, zeros = torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 1)
    a = float(model_sampling.noise_scaling(torch.tensor([sigma]), zeros, ones.clone(), False).flatten()[0])
    b = float(model_sampling.noise_scaling(torch.tensor([sigma]), ones.clone(), zeros, False).flatten()[0])
    return 2 * math.log(a / b)


def test_preview_sigmas_takes_log_snr_from_the_models_own_parameterisation(comfy_host):
    import comfy.samplers
    from tools import tiny_models
    node = comfy_host.node("SNRTPreviewSigmas")
    preview = comfy_host.pack_module("nodes.preview")
    flow_model, discrete = tiny_models.tiny_sd3_medium(num_blocks=2), tiny_models.tiny_sdxl(v_pred=False, ztsnr=False)
    for model, form in ((flow_model, "flow"), (discrete, "sigma")):
        sampling = model.get_model_object("model_sampling")
        found, scale, source = preview.log_snr_form(model)
        assert (found, source) == (form, "from the model")
        for sigma in (0.1, 0.5, 0.9):  # the formula the plot uses is ComfyUI's own mixing
            assert plot.log_snr(sigma, found, scale) == pytest.approx(comfyui_log_snr(sampling, sigma), abs=1e-5)
    flow_sigmas = comfy.samplers.calculate_sigmas(flow_model.get_model_object("model_sampling"), "simple", 8)
    sdxl_sigmas = comfy.samplers.calculate_sigmas(discrete.get_model_object("model_sampling"), "karras", 8)
    drawn = node.execute(flow_sigmas, "SD3", "SDXL", sdxl_sigmas, flow_model, discrete)[0]
    expected, _ = plot.plot_sigmas([flow_sigmas, sdxl_sigmas], ["SD3", "SDXL"], forms=["flow", "sigma"],
                                   sources=["from the model"] * 2)
    assert torch.equal(drawn, preview.image_tensor(expected))
    pixels = expected.load()
    flow_points, sdxl_points = snr_panel_points([flow_sigmas, sdxl_sigmas], ["flow", "sigma"])
    for k, points in enumerate((flow_points, sdxl_points)):  # each curve at its own formula's place
        for x, y in points[1:]:
            assert pixels[round(x), round(y)] == plot.COLOURS[k], (k, x, y)
    # model_b left unconnected: the first model serves both; no model at all: −2·ln σ, said to be assumed.
    both_flow = node.execute(flow_sigmas, "A", "B", flow_sigmas * 0.9, flow_model)[0]
    assert torch.equal(both_flow, preview.image_tensor(plot.plot_sigmas(
        [flow_sigmas, flow_sigmas * 0.9], ["A", "B"], forms=["flow", "flow"], sources=["from the model"] * 2)[0]))
    assert preview.log_snr_form(None) == (None, 1.0, "assumed, no model connected")
    unconnected = node.execute(flow_sigmas, "A", "B", None)[0]
    assert not torch.equal(unconnected, node.execute(flow_sigmas, "A", "B", None, flow_model)[0])


def test_preview_prompt_runs_on_the_live_server(live_server):
    prompt = {
        "1": {"class_type": "SNRTTestTinyModel", "inputs": {"kind": "sdxl v-pred ztsnr"}},
        "2": {"class_type": "SNRTScheduler", "inputs": {"model": ["1", 0], "steps": 28, "shape": "exponential",
                                                        "terminal": "infinite (20000)", "sigma_hi_base": 400.0,
                                                        "denoise": 1.0}},
        "3": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "karras", "steps": 28,
                                                         "denoise": 1.0}},
        "4": {"class_type": "SNRTPreviewSigmas", "inputs": {"sigmas": ["3", 0], "sigmas_b": ["2", 0],
                                                            "label": "karras", "label_b": "ours"}},
        "5": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}},
        "6": {"class_type": "SNRTPyramidNoise", "inputs": {"seed": 1, "iterations": 6, "discount": 0.4,
                                                           "offset_strength": 0.1}},
        "7": {"class_type": "EmptyLatentImage", "inputs": {"width": 256, "height": 256, "batch_size": 1}},
        "8": {"class_type": "SNRTPreviewNoise", "inputs": {"noise": ["6", 0], "latent": ["7", 0]}},
        "9": {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}},
    }
    entry = live_server.run_prompt(prompt)
    assert entry["status"]["status_str"] == "success", entry["status"]
    from PIL import Image
    for node, size in (("5", (960, 400)), ("9", (800, 400))):
        (info,) = entry["outputs"][node]["images"]
        path = live_server.base / info["type"] / info["subfolder"] / info["filename"]
        assert Image.open(path).size == size


def test_demo_quick_run_shows_the_truncated_schedule_losing_black_and_white(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tools.demo", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, env=dict(os.environ), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # A newcomer's first run: no tracebacks or failed imports from ComfyUI's own nodes on any host.
    for marker in ("Traceback", "IMPORT FAILED", "did not import correctly"):
        assert marker not in result.stdout + result.stderr, (result.stdout + result.stderr)[-3000:]
    assert (tmp_path / "samples.png").stat().st_size > 10_000
    assert (tmp_path / "schedules.png").stat().st_size > 5_000
    computed = json.loads((tmp_path / "results.json").read_text())
    rows = {(row["canvas"], row["schedule"]): row["black_white_share"] for row in computed["rows"]}
    truncated = rows[(512, "truncated: plain model, karras from sigma_max 14.6")]
    ours = rows[(512, "ZTSNR model, ours + Scale sigma_max by Resolution")]
    assert truncated < 0.15 < ours, (truncated, ours)
    assert rows[(256, "truncated: plain model, karras from sigma_max 14.6")] > truncated, "damage grows with size"
