"""Door to ComfyUI's MMDiT (comfy/ldm/modules/diffusionmodules/mmdit.py): the joint-block loop,
its "dit" replace patches, and the SLG fork that copies that loop.

Fast Skip Layer Guidance forks the skip branch off the cond pass instead of a full extra pass.
Blocks before the first skipped one see exactly the same input in the cond pass and in the skip
pass, so their output is shared: a replace patch on the first skipped block takes the cond rows'
hidden state there and runs only the blocks after it (not the skipped ones) plus the final layer;
the post-CFG step turns those tokens into the skip branch's prediction. For SD3.5 Medium (24
blocks, skip 7–9) that is 14 of 24 blocks for one row, 14/48 of a CFG step, instead of a whole
extra pass.

Assumptions: MMDiT's loop calls a "dit" ("double_block", i) replace patch with {img, txt, vec,
transformer_options} and {original_block}, and takes its "txt"/"img" back (what the plain path's
layer skip needs; `protocol_problems`); and, for the fork, ComfyUI's loop and output mapping are
the ones it copies, since the fork re-runs them (`fork_problems`: source fingerprints of those
functions on the running model's class). When the fork's check fails the node takes the plain
extra pass; when the protocol's fails it stops.
"""
from __future__ import annotations

import hashlib
import inspect
import textwrap

import torch

import comfy.ldm.modules.diffusionmodules.mmdit as comfy_mmdit
import comfy.model_base
import comfy.model_patcher

from ..errors import SNRToolkitError
from .cfg import WrappersMP, model_wrappers

#: sha256 of the MMDiT functions the fork copies (forward_core_with_concat, each forward down the
#: class chain, unpatchify), as in the ComfyUI releases where fork == plain pass was tested.
VERIFIED_LOOP_FINGERPRINTS = {
    "542d03a8": "ComfyUI 0.3.75 – 0.33.0",
}


DENOISED_FROM_OUTPUT = "return self.model_sampling.calculate_denoised(sigma, model_output.float(), x)"


def loop_fingerprint(cls: type) -> str:
    """A short hash of the source of every function of `cls` that the fork mirrors."""
    functions = [cls.forward_core_with_concat, cls.unpatchify]
    functions += [klass.__dict__["forward"] for klass in cls.__mro__
                  if "forward" in klass.__dict__ and issubclass(klass, comfy_mmdit.MMDiT)]
    digest = hashlib.sha256()
    for function in functions:
        digest.update(textwrap.dedent(inspect.getsource(function)).encode())
    return digest.hexdigest()[:8]


def fork_problems(cls: type = comfy_mmdit.OpenAISignatureMMDITWrapper,
                  base_model_cls: type = comfy.model_base.SD3) -> list[str]:
    """Why the fork would not equal the plain pass on a `base_model_cls` model whose diffusion model is a
    `cls` (empty: it would)."""
    if not issubclass(cls, comfy_mmdit.MMDiT):
        return [f"the model class {cls.__name__} is not ComfyUI's MMDiT"]
    try:
        fingerprint = loop_fingerprint(cls)
        apply_model = inspect.getsource(base_model_cls._apply_model)
    except (AttributeError, OSError, TypeError) as error:
        return [f"MMDiT's block loop cannot be read ({error})"]
    found = []
    if fingerprint not in VERIFIED_LOOP_FINGERPRINTS:
        found.append(f"MMDiT's block loop or output mapping (forward_core_with_concat / forward / unpatchify, "
                     f"fingerprint {fingerprint}) differs from the verified ones "
                     f"({', '.join(VERIFIED_LOOP_FINGERPRINTS)})")
    # denoised_from_tokens repeats the last step of BaseModel._apply_model.
    if DENOISED_FROM_OUTPUT not in apply_model:
        found.append(f"{base_model_cls.__name__}._apply_model no longer ends in `{DENOISED_FROM_OUTPUT}`")
    return found


def protocol_problems() -> list[str]:
    """The replace-patch protocol the plain SLG path needs."""
    found = []
    if not hasattr(comfy.model_patcher, "set_model_options_patch_replace"):
        found.append("comfy.model_patcher.set_model_options_patch_replace is gone (SLG's layer skip uses it)")
    try:
        source = inspect.getsource(comfy_mmdit.MMDiT.forward_core_with_concat)
    except (AttributeError, OSError, TypeError) as error:
        return found + [f"MMDiT's block loop cannot be read ({error})"]
    for needle in ('patches_replace.get("dit"', '("double_block", i)', '"original_block"'):
        if needle not in source:
            found.append(f"MMDiT's block loop no longer reads {needle} (SLG's \"dit\" double_block replace patches)")
    return found


def contract_problems() -> list[str]:
    """The replace-patch protocol, and the loop the fork copies."""
    return protocol_problems() + fork_problems()


def joint_block_count(model, who: str) -> int:
    """Number of MMDiT joint blocks, or an error naming what the model is instead."""
    diffusion_model = model.model.diffusion_model
    blocks = getattr(diffusion_model, "joint_blocks", None)
    if blocks is None:
        kind = type(diffusion_model).__name__
        hint = ("it is a UNet (SD1/SDXL), which has no transformer blocks to skip"
                if kind == "UNetModel" else f"it is a {kind}; for other DiTs use ComfyUI's SkipLayerGuidanceDiT")
        raise SNRToolkitError(f"{who}: needs an SD3 / SD3.5 MMDiT model, but {hint}.")
    return len(blocks)


def _identity_block(args, extra):
    return {"img": args["img"], "txt": args["txt"]}


def skip_options(model_options: dict, layers) -> dict:
    """model_options whose MMDiT replaces each skipped joint block by the identity (the reference's `continue`)."""
    for layer in layers:
        model_options = comfy.model_patcher.set_model_options_patch_replace(model_options, _identity_block, "dit",
                                                                             "double_block", layer)
    return model_options


def has_block_patch(model, layer: int) -> bool:
    """Whether another node already replaced this joint block."""
    replace = model.model_options.get("transformer_options", {}).get("patches_replace", {}).get("dit", {})
    return ("double_block", layer) in replace


class ForkState:
    """The skip branch's final-layer tokens from the current step's cond pass (one sampling at a time)."""

    def __init__(self):
        self.reset()
        self.schedule = None
        self.disabled = False

    def allowed(self, schedule) -> bool:
        """False once the post-CFG step found this sampling run unforkable (a new run starts afresh)."""
        if schedule is not self.schedule:
            self.schedule, self.disabled = schedule, False
        return not self.disabled

    def reset(self):
        self.tokens = None
        self.sigma = None
        self.forks = 0

    def take(self, sigma: torch.Tensor, batch: int):
        """The tokens if exactly one cond pass forked, in this model call (same σ tensor) and batch size,
        else None."""
        tokens, forked_sigma, forks = self.tokens, self.sigma, self.forks
        self.reset()
        if forks != 1 or tokens is None or forked_sigma is not sigma:
            return None
        return tokens if tokens.shape[0] == batch else None


def cond_rows(cond_or_uncond: list[int], rows: int) -> torch.Tensor:
    """Row indices of the positive prompt in a batched forward (chunks in cond_or_uncond order)."""
    per_chunk = rows // len(cond_or_uncond)
    return torch.cat([torch.arange(k * per_chunk, (k + 1) * per_chunk)
                      for k, which in enumerate(cond_or_uncond) if which == 0])


def run_blocks(diffusion_model, txt, img, vec, options: dict, first: int, skipped) -> torch.Tensor:
    """Blocks from `first` on that are not skipped (honouring other packs' replace patches), then the
    final layer: the skip branch's output tokens."""
    replace = options.get("patches_replace", {}).get("dit", {})
    for i in range(first, len(diffusion_model.joint_blocks)):
        if i in skipped:
            continue
        block = diffusion_model.joint_blocks[i]
        patch = replace.get(("double_block", i))
        if patch is not None and not getattr(patch, "snrt_fork", False):
            def original(block_args, block=block):
                out_txt, out_img = run_block(diffusion_model, block, block_args)
                return {"txt": out_txt, "img": out_img}
            out = patch({"img": img, "txt": txt, "vec": vec, "transformer_options": options},
                        {"original_block": original})
            txt, img = out["txt"], out["img"]
        else:
            txt, img = run_block(diffusion_model, block, {"img": img, "txt": txt, "vec": vec,
                                                          "transformer_options": options})
    return diffusion_model.final_layer(img, vec)


def run_block(diffusion_model, block, args: dict):
    """One joint block as MMDiT's loop runs an unpatched one. (ComfyUI's `original_block` omits
    use_checkpoint, whose default routes the block through torch.utils.checkpoint: ~0.2 ms a call
    even without gradients.)"""
    return block(args["txt"], args["img"], c=args["vec"], use_checkpoint=diffusion_model.use_checkpoint,
                 transformer_options=args["transformer_options"])


def park(tokens: torch.Tensor) -> torch.Tensor:
    """Where the model runs on a CUDA GPU, hold the branch's tokens in pinned host memory until CFG, so
    the GPU's peak stays the main pass's. Both copies are queued on the stream, with no sync. On the
    CPU, host memory is the device's memory: nothing to gain, the tokens stay where they are."""
    if tokens.device.type != "cuda":
        return tokens
    return torch.empty(tokens.shape, dtype=tokens.dtype, pin_memory=True).copy_(tokens, non_blocking=True)


class _HandOver(dict):
    """A block result that gives each tensor up when read. MMDiT's loop keeps the last replace patch's
    result in a local for all later blocks; a plain dict would pin one extra hidden state there."""

    def __getitem__(self, key):
        return self.pop(key)


def fork_patch(state: ForkState, diffusion_model, first: int, skipped, should_fork):
    """A "dit" double_block replace patch for the first skipped block. On guided steps it runs the skip
    branch for the cond rows right away, from their state at this block's input (while the 2-row main
    pass waits, so the peak stays the main pass's), keeps only the output tokens, then runs the block
    itself as if it were unpatched."""
    def patch(args, extra):
        options = args["transformer_options"]
        cond_or_uncond = options.get("cond_or_uncond", [])
        sigmas = options.get("sigmas")
        if (0 in cond_or_uncond and sigmas is not None and state.allowed(options.get("sample_sigmas"))
                and should_fork(sigmas, options)):
            rows = cond_rows(cond_or_uncond, args["img"].shape[0]).to(args["img"].device)
            branch_options = dict(options, cond_or_uncond=[c for c in cond_or_uncond if c == 0])
            state.tokens = park(run_blocks(diffusion_model, args["txt"][rows], args["img"][rows], args["vec"][rows],
                                           branch_options, first, skipped))
            state.sigma = sigmas
            state.forks += 1
        txt, img = run_block(diffusion_model, diffusion_model.joint_blocks[first], args)
        return _HandOver(txt=txt, img=img)
    patch.snrt_fork = True
    return patch


def why_not_forkable(args) -> str | None:
    """None when the forked cond pass is the whole cond prediction, else the reason it is not."""
    conds = args["cond"] or []
    if len(conds) != 1:
        return f"{len(conds)} positive conditionings (areas / masks / concat) are combined"
    cond = conds[0]
    if cond.get("control") is not None:
        return "a ControlNet adds to the blocks"
    if cond.get("area") is not None or cond.get("mask") is not None or cond.get("hooks"):
        return "the positive conditioning has an area, mask or hooks"
    options = args["model_options"]
    if "model_function_wrapper" in options:
        return "a model function wrapper is installed"
    if model_wrappers(options, WrappersMP.APPLY_MODEL, WrappersMP.DIFFUSION_MODEL):
        return "an apply-model / diffusion-model wrapper is installed"
    return None


def denoised_from_tokens(model, tokens: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """What BaseModel.apply_model returns for these final-layer tokens: unpatchify, crop, calculate_denoised."""
    hw = x.shape[-2:]
    out = model.diffusion_model.unpatchify(tokens.to(x.device, non_blocking=True), hw=hw)[:, :, :hw[-2], :hw[-1]]
    return model.model_sampling.calculate_denoised(sigma, out.float(), x)
