"""SLG, CFG rescale, pyramid noise and buckets on tiny real-architecture models through ComfyUI's real sampler."""
import math

import pytest
import torch

CFG = 4.0


@pytest.fixture(scope="module")
def sd35(host):
    from tools import tiny_models
    return tiny_models.tiny_sd3_medium(num_blocks=24)


def sd3_conditioning(seed):
    generator = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, 16, 4096, generator=generator) * 0.1,
             {"pooled_output": torch.randn(1, 2048, generator=generator) * 0.1}]]


POSITIVE, NEGATIVE = sd3_conditioning(1), sd3_conditioning(2)


class Recorder:
    """A post-CFG step appended last: records what the guidance before it produced, and how many times
    each joint block ran (and with what batch) since the previous step."""

    def __init__(self, model):
        self.steps = []
        self.block_calls = {}
        blocks = getattr(model.model.diffusion_model, "joint_blocks", [])
        self.handles = [block.register_forward_hook(self._hook(i)) for i, block in enumerate(blocks)]

    def _hook(self, index):
        def hook(module, inputs, output):
            self.block_calls.setdefault(index, []).append(output[1].shape[0])
        return hook

    def __call__(self, args):
        self.steps.append(dict(x=args["input"].clone(), sigma=args["sigma"].clone(),
                               cond=args["cond_denoised"].clone(), uncond=args["uncond_denoised"].clone(),
                               out=args["denoised"].clone(), blocks=self.block_calls))
        self.block_calls = {}
        return args["denoised"]

    def close(self):
        for handle in self.handles:
            handle.remove()


def sample_custom(host, model, steps=28, scheduler="simple", sampler="euler", noise=None, latent=None, seed=3,
                  positive=POSITIVE, negative=NEGATIVE, cfg=CFG):
    recorder = Recorder(model)
    recorded = model.clone()
    recorded.set_model_sampler_post_cfg_function(recorder)
    try:
        sigmas = host.node("BasicScheduler").execute(recorded, scheduler, steps, 1.0)[0]
        noise = noise or host.node("RandomNoise").execute(seed)[0]
        guider = host.node("CFGGuider").execute(recorded, positive, negative, cfg)[0]
        sampler_object = sampler if not isinstance(sampler, str) else host.node("KSamplerSelect").execute(sampler)[0]
        latent = latent or {"samples": torch.zeros(1, 16, 16, 16)}
        out = host.node("SamplerCustomAdvanced").execute(noise, guider, sampler_object, sigmas, latent)[0]["samples"]
    finally:
        recorder.close()
    return out, recorder.steps, sigmas


def slg(host, model, preset="SAI reference", layers="7, 8, 9", scale=2.5, start=0.01, end=0.20, gating="step fraction",
        fast_path=True, single_layers="", mode="original"):
    return host.node("SNRTSkipLayerGuidance").execute(model, preset, layers, scale, start, end, gating, fast_path,
                                                      single_layers, mode)[0]


def guided(recorded):
    """Steps on which the last joint block ran a second time (the skip branch)."""
    return [i for i, step in enumerate(recorded) if len(step["blocks"][23]) >= 2]


class Identity(torch.nn.Module):
    def forward(self, context, x, **kwargs):
        return context, x


def denoise_with_blocks_skipped(model, step, conditioning, skipped=()):
    """One forward of the model's own classes, with the given joint blocks swapped for the identity."""
    blocks = model.model.diffusion_model.joint_blocks
    saved = {i: blocks[i] for i in skipped}
    try:
        for i in skipped:
            blocks[i] = Identity()
        tokens, extra = conditioning[0]
        with torch.no_grad():
            return model.model.apply_model(step["x"], step["sigma"], c_crossattn=tokens, y=extra["pooled_output"])
    finally:
        for i, block in saved.items():
            blocks[i] = block


# --- Skip Layer Guidance ---------------------------------------------------------------------------

@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("preset,scale", [("SAI reference", 2.5), ("diffusers", 2.8)])
def test_slg_inside_and_outside_the_step_window(host, sd35, preset, scale, fast_path, caplog):
    steps = 28
    with caplog.at_level("INFO", logger="snr_toolkit"):
        out, recorded, _ = sample_custom(host, slg(host, sd35, preset, fast_path=fast_path), steps=steps)
    assert bool(torch.isfinite(out).all())
    assert ("fast path, forked at block 7: the skip branch runs 14 blocks" in caplog.text) == fast_path
    assert ("plain path" in caplog.text) != fast_path
    guided_steps = guided(recorded)
    assert guided_steps == [i for i in range(steps) if i > 0.01 * steps and i < 0.20 * steps] == [1, 2, 3, 4, 5]
    for i, step in enumerate(recorded):
        plain_cfg = step["uncond"] + (step["cond"] - step["uncond"]) * CFG
        if i not in guided_steps:
            assert torch.equal(step["out"], plain_cfg), f"step {i} outside the window must be plain CFG"
            assert step["blocks"][8] == [2], "outside the window: the batched cond/uncond pass only"
            continue
        # One extra branch for the positive prompt alone with blocks 7, 8, 9 bypassed: a whole pass on the
        # plain path; on the fast path only blocks 10–23, forked from the cond pass at block 7.
        before_fork = [2] if fast_path else [2, 1]
        assert all(step["blocks"][b] == before_fork for b in range(7)), step["blocks"]
        assert all(sorted(step["blocks"][b]) == [1, 2] for b in range(10, 24))
        assert step["blocks"][7] == step["blocks"][8] == step["blocks"][9] == [2]
        cond = denoise_with_blocks_skipped(sd35, step, POSITIVE)
        cond_skip = denoise_with_blocks_skipped(sd35, step, POSITIVE, skipped=(7, 8, 9))
        assert torch.allclose(cond, step["cond"], rtol=1e-4, atol=1e-5)
        expected = plain_cfg + (cond - cond_skip) * scale
        assert torch.allclose(step["out"], expected, rtol=1e-4, atol=1e-5), f"step {i}"
        assert not torch.allclose(step["out"], plain_cfg, atol=1e-6), "SLG must change the guided steps"


def test_slg_comfyui_preset_gates_by_sigma_percent(host, sd35):
    model_sampling = sd35.get_model_object("model_sampling")
    sigma_start, sigma_end = model_sampling.percent_to_sigma(0.01), model_sampling.percent_to_sigma(0.15)
    _, recorded, _ = sample_custom(host, slg(host, sd35, "ComfyUI"), steps=20)
    expected = [i for i, step in enumerate(recorded) if sigma_end <= float(step["sigma"]) <= sigma_start]
    assert guided(recorded) == expected and expected, (guided(recorded), expected)


def test_fast_path_gives_the_plain_paths_result(host, sd35):
    fast, fast_steps, _ = sample_custom(host, slg(host, sd35, fast_path=True), steps=12, sampler="dpmpp_2m")
    plain, plain_steps, _ = sample_custom(host, slg(host, sd35, fast_path=False), steps=12, sampler="dpmpp_2m")
    for a, b in zip(fast_steps, plain_steps):
        assert torch.allclose(a["out"], b["out"], rtol=1e-4, atol=1e-5)
    assert torch.allclose(fast, plain, rtol=1e-4, atol=1e-5)


def test_fast_path_runs_block_7_as_the_unpatched_model_does(host, sd35, monkeypatch):
    # ComfyUI's original_block omits use_checkpoint, whose default sends a block through
    # torch.utils.checkpoint (~0.2 ms a call without gradients); the fork patch must not.
    import torch.utils.checkpoint
    real, calls = torch.utils.checkpoint.checkpoint, []

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", counting)
    _, recorded, _ = sample_custom(host, slg(host, sd35), steps=10)
    assert guided(recorded) == [1], "one step inside the window, nine outside"
    assert calls == []


def test_fast_path_falls_back_to_the_plain_pass_for_masked_prompts(host, sd35, caplog):
    mask = torch.zeros(1, 16, 16)
    mask[:, :, :8] = 1.0
    masked = [[POSITIVE[0][0], dict(POSITIVE[0][1], mask=mask, mask_strength=1.0, set_area_to_bounds=False)]]
    with caplog.at_level("INFO", logger="snr_toolkit"):
        fast, fast_steps, _ = sample_custom(host, slg(host, sd35), steps=12, positive=masked)
    assert "plain path (a full extra cond pass), because the positive conditioning has an area, mask" in caplog.text
    plain, _, _ = sample_custom(host, slg(host, sd35, fast_path=False), steps=12, positive=masked)
    assert torch.equal(fast, plain)
    assert guided(fast_steps) == [1, 2]
    # Keeping the state is a slice, not a pass: the first guided step (which found the fork unusable) costs no
    # more than the next, where forking is off for the run; the plain pass runs the branch in full.
    assert fast_steps[1]["blocks"][23] == fast_steps[2]["blocks"][23] == [2, 1]
    assert fast_steps[1]["blocks"][0] == [2, 1]


@pytest.mark.parametrize("kwargs,match", [
    (dict(preset="custom", layers="7, 24"), "layer 24 is out of range: this model has 24 joint blocks"),
    (dict(preset="custom", start=0.3, end=0.2), "must be below end"),
    (dict(preset="custom", layers="7; 8"), "comma"),
    (dict(preset="custom", layers=""), "no layers given"),
    (dict(preset="custom", single_layers="3"), "SD3 has no single blocks"),
    (dict(preset="Wan2GP (block 9, uncond)"), "published for deepbeepmeep/Wan2GP.*not for this SD3 model"),
])
def test_slg_bad_settings_are_named(host, sd35, kwargs, match):
    error = host.pack_module("errors").SNRToolkitError
    with pytest.raises(error, match=match):
        slg(host, sd35, **kwargs)


def test_slg_refuses_a_unet(host):
    from tools import tiny_models
    error = host.pack_module("errors").SNRToolkitError
    with pytest.raises(error, match="UNet"):
        slg(host, tiny_models.tiny_sdxl())


# --- CFG rescale --------------------------------------------------------------------------------------

def independent_rescale(step, guided, phi, space):
    """diffusers' rescale_noise_cfg maths on v (VP models) or on the flow velocity (x − x0)/σ."""
    x, sigma = step["x"].double(), float(step["sigma"])
    if space == "v":
        to = lambda x0: (x - x0) / (sigma * math.sqrt(1 + sigma**2)) - sigma * x0 / math.sqrt(1 + sigma**2)  # noqa: E731
        back = lambda v: x / (1 + sigma**2) - v * sigma / math.sqrt(1 + sigma**2)  # noqa: E731
    else:
        to = lambda x0: (x - x0) / sigma  # noqa: E731
        back = lambda u: x - sigma * u  # noqa: E731
    g, c = to(guided.double()), to(step["cond"].double())
    dims = tuple(range(1, g.ndim))
    rescaled = g * (c.std(dim=dims, keepdim=True) / g.std(dim=dims, keepdim=True))
    return back(phi * rescaled + (1 - phi) * g).float()


@pytest.mark.parametrize("kind", ["v", "eps"])
def test_rescale_cfg_equals_the_formula_in_v_space(host, kind):
    from tools import tiny_models
    model = tiny_models.tiny_sdxl(v_pred=kind == "v", ztsnr=kind == "v", weight_std=0.1)
    rescaled = host.node("SNRTRescaleCFG").execute(model, 0.7, 0.0, 1.0)[0]
    cond = tiny_models.sdxl_conditioning(seed=1, std=30.0)
    _, recorded, _ = sample_custom(host, rescaled, steps=6, scheduler="karras", positive=cond,
                                   negative=tiny_models.sdxl_conditioning(seed=2, std=30.0), cfg=7.0,
                                   latent={"samples": torch.zeros(1, 4, 16, 16)})
    for step in recorded:
        plain_cfg = step["uncond"] + (step["cond"] - step["uncond"]) * 7.0
        expected = independent_rescale(step, plain_cfg, 0.7, "v")
        assert torch.allclose(step["out"], expected, rtol=1e-3, atol=1e-4), float(step["sigma"])
        assert float((step["out"] - plain_cfg).abs().max()) > 1e-3, "the rescale must change the prediction"


def test_rescale_window_leaves_other_steps_alone(host):
    from tools import tiny_models
    model = tiny_models.tiny_sdxl(v_pred=False, ztsnr=False)
    model_sampling = model.get_model_object("model_sampling")
    rescaled = host.node("SNRTRescaleCFG").execute(model, 0.7, 0.5, 1.0)[0]
    _, recorded, _ = sample_custom(host, rescaled, steps=6, scheduler="karras", positive=tiny_models.sdxl_conditioning(1),
                                   negative=tiny_models.sdxl_conditioning(2), latent={"samples": torch.zeros(1, 4, 16, 16)})
    limit = model_sampling.percent_to_sigma(0.5)
    for step in recorded:
        plain_cfg = step["uncond"] + (step["cond"] - step["uncond"]) * CFG
        assert torch.equal(step["out"], plain_cfg) == (float(step["sigma"]) > limit)


def test_slg_then_rescale_is_the_documented_composition(host, sd35):
    chained = host.node("SNRTRescaleCFG").execute(slg(host, sd35), 0.7, 0.0, 1.0)[0]
    _, recorded, _ = sample_custom(host, chained, steps=28)
    step = recorded[2]  # inside the SLG window
    cond = denoise_with_blocks_skipped(sd35, step, POSITIVE)
    cond_skip = denoise_with_blocks_skipped(sd35, step, POSITIVE, skipped=(7, 8, 9))
    slg_out = step["uncond"] + (step["cond"] - step["uncond"]) * CFG + (cond - cond_skip) * 2.5
    assert torch.allclose(step["out"], independent_rescale(step, slg_out, 0.7, "flow"), rtol=1e-3, atol=1e-4)
    late = recorded[20]  # outside: rescale of plain CFG
    plain_cfg = late["uncond"] + (late["cond"] - late["uncond"]) * CFG
    assert torch.allclose(late["out"], independent_rescale(late, plain_cfg, 0.7, "flow"), rtol=1e-3, atol=1e-4)


# --- pyramid noise ------------------------------------------------------------------------------------

def pyramid_noise_node(host, seed=4, iterations=6, discount=0.3, offset=0.1):
    return host.node("SNRTPyramidNoise").execute(seed, iterations, discount, offset)[0]


# Odd sizes: a 1000×1000 canvas (4×125×125) and odd latent sides, where ComfyUI's one-call batch draw and
# its one-sample-at-a-time draw (with batch_index) differ on the CPU generator; 16 channels; 5-D video.
WHITE_SHAPES = [(4, 125, 125), (4, 13, 7), (16, 9, 11), (16, 3, 7, 9)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("sample_shape", WHITE_SHAPES)
def test_white_level_is_comfyui_noise(host, sample_shape, dtype):
    import comfy.sample
    for batch in (1, 2, 3, 4):
        for batch_index in (None, [5, 0, 2, 7][:batch]):
            latent = {"samples": torch.zeros((batch, *sample_shape), dtype=dtype)}
            if batch_index is not None:
                latent["batch_index"] = batch_index
            expected = comfy.sample.prepare_noise(latent["samples"], 11, batch_index)  # the running ComfyUI's
            # iterations 0, no offset: nothing but the white level, which must be ComfyUI's noise bit for bit.
            plain = pyramid_noise_node(host, seed=11, iterations=0, offset=0.0).generate_noise(latent)
            assert plain.dtype == dtype and torch.equal(plain, expected), (batch, batch_index)
            # The white level as the pyramid uses it: at discount 0 only level 0 (a second independent white
            # draw, weight 1) is added, so each sample correlates 1/√2 with ComfyUI's noise for it.
            mixed = pyramid_noise_node(host, seed=11, iterations=6, discount=0.0, offset=0.0).generate_noise(latent)
            assert mixed.dtype == dtype and mixed.shape == expected.shape
            for got, white in zip(mixed.float(), expected.float()):
                correlation = float(torch.corrcoef(torch.stack([got.flatten(), white.flatten()]))[0, 1])
                assert correlation == pytest.approx(1 / math.sqrt(2), abs=4 / math.sqrt(white.numel())), \
                    (batch, batch_index)


def test_same_seed_and_batch_index_give_the_same_sample_in_any_batch(host):
    # What the seed tooltip promises: with batch_index always; without, the levels above white always and
    # the white level as ComfyUI gives it (equal only when C×H×W is a multiple of 16).
    node = pyramid_noise_node(host, seed=3)
    for shape in [(4, 13, 7), (4, 16, 16)]:
        big = node.generate_noise({"samples": torch.zeros(4, *shape), "batch_index": [0, 1, 2, 3]})
        alone = node.generate_noise({"samples": torch.zeros(1, *shape), "batch_index": [2]})
        assert torch.equal(big[2:3], alone)
    whole = node.generate_noise({"samples": torch.zeros(3, 4, 16, 16)})
    assert torch.equal(whole[:1], node.generate_noise({"samples": torch.zeros(1, 4, 16, 16)}))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_an_empty_batch_gives_what_comfyuis_own_noise_gives_in_every_noise_node(host, dtype):
    import comfy.k_diffusion.sampling
    import comfy.sample
    from tools import tiny_models
    empty = {"samples": torch.zeros((0, 4, 8, 8), dtype=dtype)}
    theirs = host.node("RandomNoise").execute(4)[0].generate_noise(empty)  # ComfyUI's own: an empty tensor
    assert theirs.shape == (0, 4, 8, 8) and theirs.dtype == dtype
    ours = pyramid_noise_node(host, seed=4).generate_noise(empty)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    # Pyramid Noise Latent: ComfyUI's own noising of the empty latent (as KSamplerAdvanced does it).
    model = tiny_models.tiny_sdxl(v_pred=False, ztsnr=False)
    sampling = model.get_model_object("model_sampling")
    sigma = float(host.node("BasicScheduler").execute(model, "karras", 6, 1.0)[0][0])
    expected = model.model.process_latent_out(sampling.noise_scaling(
        torch.tensor(sigma), comfy.sample.prepare_noise(empty["samples"], 4), model.model.process_latent_in(
            empty["samples"]), True))
    noised = pyramid_latent(host, model, empty)["samples"]
    assert noised.shape == expected.shape == (0, 4, 8, 8) and noised.dtype == expected.dtype
    # Pyramid Noise Sampler's per-step draws: what k-diffusion's default noise sampler gives for an empty x.
    x = torch.zeros((0, 4, 8, 8), dtype=dtype)
    step = host.pack_module("nodes.pyramid_noise").pyramid_noise_sampler(x, 4, 6, 0.3, 0.1)(1.0, 0.5)
    default = comfy.k_diffusion.sampling.default_noise_sampler(x, seed=4)(1.0, 0.5)
    assert step.shape == default.shape and step.dtype == default.dtype


@pytest.mark.parametrize("sampler_name", ["euler_ancestral", "dpmpp_2m_sde"])
def test_wrapped_sampler_calls_the_pyramid_noise_sampler(host, sd35, monkeypatch, sampler_name):
    module = host.pack_module("nodes.pyramid_noise")
    calls = []
    original = module.pyramid_noise

    def counting(*args, **kwargs):
        calls.append(tuple(args[0].shape))
        return original(*args, **kwargs)
    monkeypatch.setattr(module, "pyramid_noise", counting)
    inner = host.node("KSamplerSelect").execute(sampler_name)[0]
    wrapped = host.node("SNRTPyramidNoiseSampler").execute(inner, 6, 0.3, 0.1)[0]
    out, _, sigmas = sample_custom(host, sd35, steps=6, sampler=wrapped)
    assert bool(torch.isfinite(out).all())
    assert len(calls) == len(sigmas) - 2, "one pyramid draw per step that lands above σ = 0"
    assert all(shape == (1, 16, 16, 16) for shape in calls)
    plain, _, _ = sample_custom(host, sd35, steps=6, sampler=inner)
    assert not torch.allclose(out, plain)


def test_wrapping_a_deterministic_sampler_is_refused(host):
    error = host.pack_module("errors").SNRToolkitError
    with pytest.raises(error, match="euler_ancestral or dpmpp_2m_sde"):
        host.node("SNRTPyramidNoiseSampler").execute(host.node("KSamplerSelect").execute("euler")[0], 6, 0.3, 0.0)


def pyramid_latent(host, model, latent, scheduler="karras", steps=6, start=0, seed=4):
    return host.node("SNRTPyramidLatent").execute(model, latent, scheduler, steps, start, seed, 6, 0.3, 0.1)[0]


@pytest.mark.parametrize("start", [0, 3])
def test_pyramid_latent_is_latent_plus_scaled_noise(host, start):
    import comfy.samplers
    from tools import tiny_models
    model = tiny_models.tiny_sdxl(v_pred=False, ztsnr=False)
    clean = torch.randn(2, 4, 16, 16) * 0.3
    out = pyramid_latent(host, model, {"samples": clean}, start=start)["samples"]
    sigma = float(comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "karras", 6)[start])
    noise = pyramid_noise_node(host).generate_noise({"samples": clean})  # the same seed and settings
    scale = math.sqrt(1 + sigma**2) if start == 0 else sigma  # start 0 is the model's σ_max: ComfyUI's max-denoise
    sdxl_scale_factor = 0.13025  # SDXL latent_format: noise is added to the processed latent
    expected = (clean * sdxl_scale_factor + noise * scale) / sdxl_scale_factor
    assert torch.allclose(out, expected, rtol=1e-5, atol=1e-4)


def test_pyramid_latent_with_ksampler_advanced_equals_pyramid_noise_with_sampler_custom(host):
    from tools import tiny_models
    model = tiny_models.tiny_sdxl(v_pred=True, ztsnr=True)
    cond, neg = tiny_models.sdxl_conditioning(1), tiny_models.sdxl_conditioning(2)
    empty = {"samples": torch.zeros(1, 4, 16, 16)}
    noised = pyramid_latent(host, model, empty, scheduler="ztsnr_karras", seed=8)
    advanced = host.nodes.KSamplerAdvanced().sample(model, "disable", 0, 6, CFG, "euler", "ztsnr_karras", cond, neg,
                                                    noised, 0, 10000, "disable")[0]["samples"]
    sigmas = host.node("BasicScheduler").execute(model, "ztsnr_karras", 6, 1.0)[0]
    custom = host.node("SamplerCustomAdvanced").execute(
        pyramid_noise_node(host, seed=8), host.node("CFGGuider").execute(model, cond, neg, CFG)[0],
        host.node("KSamplerSelect").execute("euler")[0], sigmas, empty)[0]["samples"]
    assert bool(torch.isfinite(advanced).all())
    # The pre-noised latent holds noise × 20000 / 0.13025 in fp32, so they agree to fp32 rounding of that.
    assert float((advanced - custom).abs().max()) < 5e-4 * float(custom.abs().max())
    other_seed = pyramid_latent(host, model, empty, scheduler="ztsnr_karras", seed=9)
    different = host.nodes.KSamplerAdvanced().sample(model, "disable", 0, 6, CFG, "euler", "ztsnr_karras", cond, neg,
                                                     other_seed, 0, 10000, "disable")[0]["samples"]
    assert float((different - custom).abs().max()) > 0.1 * float(custom.abs().max())


def test_pyramid_latent_refuses_flow_models_and_impossible_steps(host, sd35):
    from tools import tiny_models
    error = host.pack_module("errors").SNRToolkitError
    with pytest.raises(error, match="SamplerCustomAdvanced"):
        pyramid_latent(host, sd35, {"samples": torch.zeros(1, 16, 8, 8)}, scheduler="simple")
    with pytest.raises(error, match="start_at_step"):
        pyramid_latent(host, tiny_models.tiny_sdxl(), {"samples": torch.zeros(1, 4, 8, 8)}, steps=4, start=4)


# --- buckets ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,channels", [("SD1 / SDXL (4 channels)", 4), ("SD3 / SD3.5 / Flux (16 channels)", 16)])
def test_bucket_node_latent_matches_its_size(host, kind, channels):
    latent, width, height = host.node("SNRTAspectBucket").execute(16, 9, 1024 * 1024, kind, 2).result
    assert latent["samples"].shape == (2, channels, height // 8, width // 8)
    assert (width, height) == (1344, 768)
