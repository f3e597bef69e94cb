"""tools/tiny_dits.py: each tiny DiT is ComfyUI's real model class with the real block count, and one
real sampling step through ComfyUI's own sampler (cfg 2, a negative prompt) reads the conditioning. A family
newer than the host is checked absent there, then skipped (fixture require_tiny_dit)."""
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
    "stable_audio": {"transformer.layers": 24},
    "stable_audio3": {"transformer.layers": 24},
    "hunyuan3d": {"double_blocks": 16, "single_blocks": 32},
    "kandinsky5": {"visual_transformer_blocks": 32, "text_transformer_blocks": 2},
    "joyimage": {"double_blocks": 40},
    "lens": {"transformer_blocks": 48},
    "mage_flow": {"transformer_blocks": 12},
    "hidream_o1": {"language_model.layers": 36},
    "minimax_h3": {"blocks": 50},
    "ltxav": {"transformer_blocks": 48},
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
    assert set(FAMILY_NAMES) == set(tiny_dits.DOOR_FAMILY)


def flat(latent):
    """One flat tensor of a latent (a NestedTensor's streams concatenated: MiniMax H3's video and audio)."""
    if getattr(latent, "is_nested", False):
        return torch.cat([t.flatten() for t in latent.unbind()])
    return latent.flatten()


def batched(make_latent):
    """Two latents in one batch (a NestedTensor stream by stream)."""
    first, second = make_latent(0), make_latent(1)
    if getattr(first, "is_nested", False):
        return type(first)(tuple(torch.cat(pair) for pair in zip(first.unbind(), second.unbind())))
    return torch.cat([first, second])


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
        self.outputs.append(flat(output).detach().clone() if not isinstance(output, list)
                            else torch.cat([o.flatten() for o in output]).detach())

    def remove(self):
        for handle in self._handles:
            handle.remove()


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_block_counts_are_the_real_ones(tiny_dits, require_tiny_dit, family):
    require_tiny_dit(family)
    build = tiny_dits.FAMILIES[family][0]
    diffusion_model = build().model.diffusion_model
    for path, count in BLOCK_COUNTS[family].items():
        blocks = diffusion_model
        for name in path.split("."):
            blocks = getattr(blocks, name)
        assert len(blocks) == count, path


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_one_sampling_step_with_cfg_reads_the_conditioning(tiny_dits, require_tiny_dit, family):
    require_tiny_dit(family)
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
    assert flat(first).shape == flat(latent).shape
    assert torch.isfinite(flat(first)).all() and torch.isfinite(flat(second)).all()
    assert torch.equal(flat(first), flat(again)), "a seed must give the same weights and the same step"
    assert (flat(first) - flat(second)).abs().max() > 1e-4, "the positive prompt did not reach the blocks"
    # cond and uncond ran, batched or one by one, and what the model returned is non-trivial.
    assert recorder.outputs and all(torch.isfinite(o).all() for o in recorder.outputs)
    assert min(o.float().std().item() for o in recorder.outputs) > 1e-3
    # No wall-clock bound here: on a shared 2-core machine a ~0.1 s forward has taken 10 s.


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_batch_of_two_conditions_each_sample(tiny_dits, require_tiny_dit, family):
    require_tiny_dit(family)
    build, conditioning, make_latent = tiny_dits.FAMILIES[family]
    latent = batched(make_latent)
    if family in tiny_dits.BATCH_ONE:
        with pytest.raises(ValueError, match="batch size 1"):
            one_step(build(), conditioning(batch=2, seed=1), conditioning(batch=2, seed=3), latent)
        return
    out = one_step(build(), conditioning(batch=2, seed=1), conditioning(batch=2, seed=3), latent)
    assert flat(out).shape == flat(latent).shape and torch.isfinite(flat(out)).all()
