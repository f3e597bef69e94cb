"""tools/tiny_dits.py: each tiny DiT is ComfyUI's real model class with the real block count, and one
real sampling step through ComfyUI's own sampler (cfg 2, a negative prompt) reads the conditioning."""
import pytest
import torch

#: the block lists each family's diffusion model must hold: the real counts at toy width (Mochi: 24 of 48).
BLOCK_COUNTS = {
    "flux": {"double_blocks": 19, "single_blocks": 38},
    "wan": {"blocks": 30},
    "sd35_large": {"joint_blocks": 38},
    "hunyuan_video": {"double_blocks": 20, "single_blocks": 40},
    "ltxv": {"transformer_blocks": 28},
    "qwen_image": {"transformer_blocks": 60},
    "aura_flow": {"double_layers": 4, "single_layers": 32},
    "chroma": {"double_blocks": 19, "single_blocks": 38},
    "mochi": {"blocks": 24},
    "hunyuan_dit": {"blocks": 40},
}


def family_names():
    """The families tools.tiny_dits exports (read from its source, as comfy cannot import before the host is up)."""
    import ast
    from pathlib import Path
    source = (Path(__file__).resolve().parents[1] / "tools" / "tiny_dits.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "FAMILIES" for t in node.targets):
            return [k.value for k in node.value.keys]
    raise AssertionError("tools/tiny_dits.py defines no FAMILIES")


FAMILY_NAMES = family_names()


@pytest.fixture(scope="module")
def tiny_dits(comfy_host):
    import comfy.samplers  # noqa: F401
    from tools import tiny_dits
    # Toy-width matmuls gain nothing from threads, and on a busy shared CPU torch's spinning worker
    # threads turn a 0.1 s forward into 10 s.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tiny_dits
    torch.set_num_threads(threads)


def test_every_family_is_covered(tiny_dits):
    assert list(tiny_dits.FAMILIES) == FAMILY_NAMES
    assert set(FAMILY_NAMES) <= set(BLOCK_COUNTS)


def one_step(model, positive, negative, latent, cfg=2.0):
    import comfy.sample
    noise = comfy.sample.prepare_noise(latent, 0)
    return comfy.sample.sample(model, noise, 1, cfg, "euler", "simple", positive, negative, latent,
                               disable_pbar=True, seed=0)


class ForwardRecorder:
    """What the diffusion model returned on each call."""

    def __init__(self, module):
        self.outputs = []
        self._handles = [module.register_forward_hook(self._post)]

    def _post(self, module, args, output):
        self.outputs.append(output.detach().clone())

    def remove(self):
        for handle in self._handles:
            handle.remove()


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_block_counts_are_the_real_ones(tiny_dits, family):
    build = tiny_dits.FAMILIES[family][0]
    diffusion_model = build().model.diffusion_model
    for attribute, count in BLOCK_COUNTS[family].items():
        assert len(getattr(diffusion_model, attribute)) == count, attribute


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_one_sampling_step_with_cfg_reads_the_conditioning(tiny_dits, family):
    build, conditioning, make_latent = tiny_dits.FAMILIES[family]
    model = build()
    latent = make_latent(0)
    negative = conditioning(seed=3)
    recorder = ForwardRecorder(model.model.diffusion_model)
    try:
        first = one_step(model, conditioning(seed=1), negative, latent)
        second = one_step(model, conditioning(seed=2), negative, latent)
        again = one_step(build(), conditioning(seed=1), negative, latent)
    finally:
        recorder.remove()
    assert first.shape == latent.shape
    assert torch.isfinite(first).all() and torch.isfinite(second).all()
    assert torch.equal(first, again), "a seed must give the same weights and the same step"
    assert (first - second).abs().max() > 1e-4, "the positive prompt did not reach the blocks"
    # cond and uncond ran, batched or one by one, and what the model returned is non-trivial.
    assert recorder.outputs and all(torch.isfinite(o).all() for o in recorder.outputs)
    assert min(o.float().std().item() for o in recorder.outputs) > 1e-3
    # No wall-clock bound here: on a shared 2-core machine a ~0.1 s forward has taken 10 s.


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_batch_of_two_conditions_each_sample(tiny_dits, family):
    build, conditioning, make_latent = tiny_dits.FAMILIES[family]
    latent = torch.cat([make_latent(0), make_latent(1)])
    out = one_step(build(), conditioning(batch=2, seed=1), conditioning(batch=2, seed=3), latent)
    assert out.shape == latent.shape and torch.isfinite(out).all()
