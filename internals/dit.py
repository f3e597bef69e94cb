"""Door to ComfyUI's DiT block loops (comfy/ldm/*): which DiT family a diffusion model is, the "dit"
replace patches every family's loop honours, and the SLG fork that shares the cond pass's prefix.

Fast Skip Layer Guidance: the skip branch (the positive prompt with some blocks skipped) sees exactly
what the cond pass sees up to the first skipped block, so it need not run those blocks again. A
replace patch on the first skipped block keeps a copy of the cond rows' hidden state at that block's
input (no block compute); the branch pass then has every earlier block replaced by the identity and
the first skipped block by that kept state, so it runs only the blocks after it that are not
skipped, plus the model's own head and output mapping. For SD3.5 Medium (24 blocks, skip 7–9) that
is 14 of 24 blocks for one row: 14/48 of a CFG step instead of a whole extra pass.

Assumptions: each family's loop calls a "dit" ("double_block" | "single_block", i) replace patch with
{img, txt?, vec, …, transformer_options} (Kandinsky 5, HiDream-O1: {x, …}) and {original_block}, and takes
its hidden state back from the result (what the layer skip needs; `protocol_problems`); and, for the fork,
the loop carries nothing but that state (`Family.carried`) from one block to the next, which holds for the
loops whose source fingerprint was verified on a release (`fork_problems`). When the fork's check fails the
node runs the plain extra pass; when the protocol's fails it stops.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import textwrap
from dataclasses import dataclass

import torch

import comfy.model_patcher

from ..errors import SNRToolkitError
from . import comfyui_version
from .cfg import WrappersMP, model_wrappers

DOUBLE, SINGLE = "double_block", "single_block"


@dataclass(frozen=True)
class Family:
    name: str
    module: str
    class_name: str
    double: str  # attribute path (from the diffusion model) of the blocks the loop patches as ("double_block", i)
    single: str | None = None  # … as ("single_block", i); they run after the double blocks
    #: Why the fork can never equal the plain pass, or never pay, on this family's loop (None: it can, once verified).
    unforkable: str | None = None
    #: The hidden state the loop takes back from a replace patch, batch first (what the fork keeps).
    carried: tuple[str, ...] = ("img", "txt")
    #: Where the loop runs when not in the model class itself: (class name in `module`, attribute path to it).
    loop_owner: tuple[str, str] | None = None
    #: The ComfyUI release the family was verified present from, where later than the lowest supported (0.3.75).
    since: str | None = None

    def expected_here(self) -> bool:
        """Whether this ComfyUI should have the family (False only for a release older than `since`)."""
        return self.since is None or version_tuple(comfyui_version()) >= version_tuple(self.since)

    def model_class(self):
        return self._class(self.class_name)

    def loop_class(self):
        """The class whose methods run the block loop (the model class unless `loop_owner` says otherwise)."""
        return self._class(self.loop_owner[0]) if self.loop_owner else self.model_class()

    def loop_object_class(self, diffusion_model) -> type:
        """The class that runs this instance's loop (the model's own class, which may override the family's)."""
        return type(attribute_path(diffusion_model, self.loop_owner[1]) if self.loop_owner else diffusion_model)

    def blocks(self, diffusion_model, kind: str):
        path = self.double if kind == DOUBLE else self.single
        return attribute_path(diffusion_model, path) if path else ()

    def _class(self, name: str):
        try:
            return getattr(importlib.import_module(self.module), name)
        except (ImportError, AttributeError):
            return None


def version_tuple(version: str) -> tuple[int, ...]:
    """(0, 33, 0) from "0.33.0"; an unreadable version counts as new (every family expected)."""
    parts = tuple(int(part) for part in version.split(".")[:3] if part.isdigit())
    return parts or (10 ** 6,)


def attribute_path(obj, path: str):
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


_PACKED = "its loop runs one sample's tokens packed with no batch axis (batch size 1 only)"
_KV_CACHE = ("its cond and uncond passes reuse the prompt's attention keys and values across steps only while no "
             "block is patched, and the fork's patch sits on every pass")

#: The DiT families whose block loops ComfyUI's SkipLayerGuidanceDiT can patch (ComfyUI 0.3.75–0.33.0).
FAMILIES = (
    Family("SD3", "comfy.ldm.modules.diffusionmodules.mmdit", "MMDiT", "joint_blocks"),
    Family("Flux", "comfy.ldm.flux.model", "Flux", "double_blocks", "single_blocks"),
    Family("Chroma", "comfy.ldm.chroma.model", "Chroma", "double_blocks", "single_blocks"),
    Family("HunyuanVideo", "comfy.ldm.hunyuan_video.model", "HunyuanVideo", "double_blocks", "single_blocks"),
    Family("Wan", "comfy.ldm.wan.model", "WanModel", "blocks"),
    Family("LTX-Video", "comfy.ldm.lightricks.model", "LTXVModel", "transformer_blocks"),
    Family("LTX-2", "comfy.ldm.lightricks.av_model", "LTXAVModel", "transformer_blocks", since="0.33.0",
           unforkable="its blocks pass video and audio as one (video, audio) pair, which the fork does not cut "
                      "into rows"),
    Family("Qwen-Image", "comfy.ldm.qwen_image.model", "QwenImageTransformer2DModel", "transformer_blocks"),
    Family("AuraFlow", "comfy.ldm.aura.mmdit", "MMDiT", "double_layers", "single_layers"),
    Family("Mochi", "comfy.ldm.genmo.joint_model.asymm_models_joint", "AsymmDiTJoint", "blocks"),
    Family("HunyuanDiT", "comfy.ldm.hydit.models", "HunYuanDiT", "blocks",
           unforkable="its later blocks take long skip connections from the earlier ones"),
    Family("Stable Audio", "comfy.ldm.audio.dit", "AudioDiffusionTransformer", "transformer.layers",
           loop_owner=("ContinuousTransformer", "transformer"), carried=("img",)),
    Family("Hunyuan3D", "comfy.ldm.hunyuan3d.model", "Hunyuan3Dv2", "double_blocks", "single_blocks"),
    Family("Kandinsky 5", "comfy.ldm.kandinsky5.model", "Kandinsky5", "visual_transformer_blocks",
           carried=("x",), since="0.33.0"),
    Family("JoyImage", "comfy.ldm.joyimage.model", "JoyImageTransformer3DModel", "double_blocks", since="0.33.0"),
    Family("Lens", "comfy.ldm.lens.model", "LensTransformer2DModel", "transformer_blocks", since="0.33.0"),
    Family("MageFlow", "comfy.ldm.mage_flow.model", "MageFlowTransformer2DModel", "transformer_blocks", since="0.33.0"),
    Family("HiDream-O1", "comfy.ldm.hidream_o1.model", "HiDreamO1Transformer", "language_model.layers",
           unforkable=_KV_CACHE, carried=("x",), since="0.33.0"),
    Family("MiniMax H3", "comfy.ldm.minimax.model", "MiniMaxH3Model", "blocks", unforkable=_PACKED,
           since="0.33.0"),
)

#: sha256 (first 8 hex) of each family's block-loop functions, as in the ComfyUI releases where the
#: fork was tested equal to the plain pass (tests/test_host_slg_families.py).
VERIFIED_LOOP_FINGERPRINTS = {
    "SD3": {"8f60dd06": "ComfyUI 0.3.75 – 0.33.0"},
    "Flux": {"63dbc1e9": "ComfyUI 0.3.75", "1398a8e3": "ComfyUI 0.33.0"},
    "Chroma": {"d24ac827": "ComfyUI 0.3.75", "827295fa": "ComfyUI 0.33.0"},
    "HunyuanVideo": {"e8cfb03a": "ComfyUI 0.3.75", "473f7fe3": "ComfyUI 0.33.0"},
    "Wan": {"1f6763e5": "ComfyUI 0.3.75", "888235b8": "ComfyUI 0.33.0"},
    "LTX-Video": {"0f50fae4": "ComfyUI 0.3.75", "39b80087": "ComfyUI 0.33.0"},
    "Qwen-Image": {"5d952c4d": "ComfyUI 0.3.75", "7dce9035": "ComfyUI 0.33.0"},
    "AuraFlow": {"b6d7299e": "ComfyUI 0.3.75 – 0.33.0"},
    "Mochi": {"05c36ef8": "ComfyUI 0.3.75 – 0.33.0"},
    "Stable Audio": {"abd4edab": "ComfyUI 0.3.75", "fa5cac0c": "ComfyUI 0.33.0"},
    "Hunyuan3D": {"1eafeb06": "ComfyUI 0.3.75 – 0.33.0"},
    "Kandinsky 5": {"c81f545b": "ComfyUI 0.33.0"},
    "JoyImage": {"434c1e2b": "ComfyUI 0.33.0"},
    "Lens": {"8f7a1fe6": "ComfyUI 0.33.0"},
    "MageFlow": {"dace5bfb": "ComfyUI 0.33.0"},
}


def family_of(diffusion_model) -> Family | None:
    """The family whose model class is nearest in the diffusion model's class chain."""
    classes = {family.model_class(): family for family in FAMILIES}
    for klass in type(diffusion_model).__mro__:
        if klass in classes:
            return classes[klass]
    return None


def dit_family(model, who: str) -> Family:
    """The loaded model's DiT family, or an error naming what the model is instead."""
    diffusion_model = model.model.diffusion_model
    family = family_of(diffusion_model)
    if family is None:
        kind = type(diffusion_model).__name__
        if kind == "UNetModel":
            hint = "it is a UNet (SD1/SDXL), which has no transformer blocks to skip"
        elif loop_functions(type(diffusion_model)):
            hint = (f"its diffusion model is a {kind}, a family this node does not know (newer than this release "
                    "of the pack?); ComfyUI's SkipLayerGuidanceDiT can patch its blocks")
        else:
            hint = f"its diffusion model is a {kind}, whose block loop takes no layer-skip patches"
        raise SNRToolkitError(f"{who}: needs a DiT model ({', '.join(f.name for f in FAMILIES)}), but {hint}.")
    return family


def block_counts(model, family: Family) -> dict[str, int]:
    """{"double_block": n, "single_block": m} for this model (m = 0 where the family has one kind)."""
    diffusion_model = model.model.diffusion_model
    return {kind: len(family.blocks(diffusion_model, kind)) for kind in (DOUBLE, SINGLE)}


def loop_functions(cls: type) -> list:
    """The functions of `cls` (as resolved on it) that run its block loop: they read the "dit" patches."""
    found = {}
    for klass in cls.__mro__:
        if klass is torch.nn.Module:
            break
        for name, value in vars(klass).items():
            if name in found or not inspect.isfunction(value):
                continue
            try:
                source = inspect.getsource(getattr(cls, name))
            except (OSError, TypeError):
                continue
            if '"double_block"' in source or '"single_block"' in source:
                found[name] = getattr(cls, name)
    return [found[name] for name in sorted(found)]


def loop_fingerprint(cls: type) -> str:
    """A short hash of the source of the functions that run `cls`'s block loop."""
    digest = hashlib.sha256()
    for function in loop_functions(cls):
        digest.update(textwrap.dedent(inspect.getsource(function)).encode())
    return digest.hexdigest()[:8]


def fork_problems(cls: type, family: Family) -> list[str]:
    """Why the fork would not be known to equal the plain pass on a `cls` diffusion model (empty: it would)."""
    if family.unforkable:
        return [f"{family.name}'s fork is ruled out: {family.unforkable}"]
    try:
        fingerprint = loop_fingerprint(cls)
    except (AttributeError, OSError, TypeError) as error:
        return [f"{family.name}'s block loop cannot be read ({error})"]
    verified = VERIFIED_LOOP_FINGERPRINTS.get(family.name, {})
    if fingerprint in verified:
        return []
    return [f"{family.name}'s block loop ({cls.__name__}, fingerprint {fingerprint}) is not one the fork was "
            f"verified on" + (f" ({', '.join(verified)})" if verified else "")]


def model_fork_problems(diffusion_model, family: Family) -> list[str]:
    """fork_problems for this loaded model: its loop's class, and what its blocks take beside the patch args."""
    found = fork_problems(family.loop_object_class(diffusion_model), family)
    if family.name == "Stable Audio" and any(getattr(block, "to_local_embed", None) is not None
                                             for block in family.blocks(diffusion_model, DOUBLE)):
        # The loop hands local_add_cond only to unpatched blocks; the fork's kept block would run without it.
        found.append("this Stable Audio model's blocks take a local conditioning (Stable Audio 3) that ComfyUI "
                     "gives only to unpatched blocks")
    return found


def protocol_problems(family: Family | None = None, cls: type | None = None) -> list[str]:
    """The replace-patch protocol the plain SLG path needs, for one family (on `cls`, the model's own class,
    which may override the family's loop) or all."""
    found = []
    if not hasattr(comfy.model_patcher, "set_model_options_patch_replace"):
        found.append("comfy.model_patcher.set_model_options_patch_replace is gone (SLG's layer skip uses it)")
    for each in [family] if family else FAMILIES:
        klass = (cls if family and cls else None) or each.loop_class()
        if klass is None:
            if not each.expected_here():
                continue  # a family newer than this ComfyUI
            found.append(f"{each.module}.{each.loop_owner[0] if each.loop_owner else each.class_name} is gone "
                         f"({each.name} family detection)")
            continue
        source = "".join(inspect.getsource(function) for function in loop_functions(klass))
        kinds = [DOUBLE] + ([SINGLE] if each.single else [])
        for needle in [f'"{kind}"' for kind in kinds] + ['patches_replace.get("dit"', '"original_block"']:
            if needle not in source:
                found.append(f"{each.name}'s block loop ({klass.__name__}) no longer reads {needle} "
                             "(SLG's \"dit\" replace patches)")
    return found


def bypass_problems() -> list[str]:
    """What patches_bypassed relies on: ar_video's state key, read by Causal Wan's forward (ComfyUI 0.33+)."""
    try:
        import comfy.ldm.wan.ar_model as ar_model
        import comfy.k_diffusion.sampling as sampling
    except ImportError:
        return []  # no Causal Wan on this ComfyUI
    found = []
    if 'get("ar_state")' not in inspect.getsource(ar_model.CausalWanModel.forward):
        found.append("CausalWanModel.forward no longer reads transformer_options['ar_state'] (SLG's ar_video check)")
    if not hasattr(sampling, "sample_ar_video") or '["ar_state"]' not in inspect.getsource(sampling.sample_ar_video):
        found.append("sample_ar_video no longer sets transformer_options['ar_state'] (SLG's ar_video check)")
    return found


def contract_problems() -> list[str]:
    """The replace-patch protocol on every family, each verified loop still verified, and the ar_video check."""
    found = protocol_problems() + bypass_problems()
    for family in FAMILIES:
        if family.name in VERIFIED_LOOP_FINGERPRINTS and family.loop_class() is not None:
            found += fork_problems(family.loop_class(), family)
    return found


def _identity_block(args, extra):
    return args


def skip_options(model_options: dict, layers: dict[str, tuple[int, ...]]) -> dict:
    """model_options whose loop replaces each skipped block by the identity (the reference's `continue`)."""
    for kind, indices in layers.items():
        for index in indices:
            model_options = comfy.model_patcher.set_model_options_patch_replace(model_options, _identity_block,
                                                                                 "dit", kind, index)
    return model_options


def patches_bypassed(model_options: dict) -> str | None:
    """Why this model call's blocks will not read the "dit" replace patches (None: they will). ComfyUI 0.33's
    ar_video sampler puts its KV-cache state in transformer_options, and CausalWanModel then runs its own
    cached block loop (forward_block), which reads no patches."""
    if (model_options.get("transformer_options") or {}).get("ar_state") is not None:
        return ("the ar_video sampler runs Causal Wan's blocks through their own KV-cached loop, which takes no "
                "layer-skip patches (a skip pass would skip nothing and overfill the cache)")
    return None


def has_block_patch(model, kind: str, index: int) -> bool:
    """Whether another node already replaced this block."""
    replace = model.model_options.get("transformer_options", {}).get("patches_replace", {}).get("dit", {})
    return (kind, index) in replace


class ForkState:
    """The cond rows' hidden state at the first skipped block, from the current step's cond pass (one
    sampling at a time)."""

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
        self.state = None
        self.sigma = None
        self.forks = 0

    def take(self, sigma: torch.Tensor, batch: int):
        """The kept state if exactly one cond pass kept it, in this model call (same σ tensor) and batch
        size, else None."""
        state, kept_sigma, forks = self.state, self.sigma, self.forks
        self.reset()
        if forks != 1 or not state or kept_sigma is not sigma:
            return None
        return state if next(iter(state.values())).shape[0] == batch else None


def cond_rows(cond_or_uncond: list[int], rows: int) -> torch.Tensor:
    """Row indices of the positive prompt in a batched forward (chunks in cond_or_uncond order)."""
    per_chunk = rows // len(cond_or_uncond)
    return torch.cat([torch.arange(k * per_chunk, (k + 1) * per_chunk)
                      for k, which in enumerate(cond_or_uncond) if which == 0])


def run_original(diffusion_model, family: Family, kind: str, index: int, args: dict, extra: dict) -> dict:
    """The block as the loop runs an unpatched one. (MMDiT's `original_block` omits use_checkpoint, whose
    default routes the block through torch.utils.checkpoint: ~0.2 ms a call even without gradients;
    Kandinsky 5's cannot run at all in ComfyUI 0.33.0.)"""
    if family.name == "SD3":
        txt, img = diffusion_model.joint_blocks[index](
            args["txt"], args["img"], c=args["vec"], use_checkpoint=diffusion_model.use_checkpoint,
            transformer_options=args["transformer_options"])
        return {"txt": txt, "img": img}
    if family.name == "Kandinsky 5":  # its original_block passes x= (the block's is visual_embed), returns a bare tensor
        block = diffusion_model.visual_transformer_blocks[index]
        return {"x": block(args["x"], args["context"], args["time_embed"], freqs=args["freqs"],
                           transformer_options=args["transformer_options"])}
    return extra["original_block"](args)


class _HandOver(dict):
    """A block result that gives each tensor up when read. The loops keep the last replace patch's result in
    a local for all later blocks; a plain dict would pin one extra hidden state there."""

    def __getitem__(self, key):
        return self.pop(key)


def keep_patch(state: ForkState, diffusion_model, family: Family, kind: str, index: int, should_fork):
    """A replace patch for the first skipped block: on guided steps it keeps the cond rows' hidden state
    (`family.carried`) at the block's input, then runs the block as if unpatched."""
    def patch(args, extra):
        options = args.get("transformer_options") or {}
        cond_or_uncond = options.get("cond_or_uncond", [])
        sigmas = options.get("sigmas")
        if (0 in cond_or_uncond and sigmas is not None and state.allowed(options.get("sample_sigmas"))
                and should_fork(sigmas, options)):
            carried = [key for key in family.carried if isinstance(args.get(key), torch.Tensor)]
            rows = cond_rows(cond_or_uncond, args[carried[0]].shape[0]).to(args[carried[0]].device)
            state.state = {key: args[key][rows] for key in carried}
            state.sigma = sigmas
            state.forks += 1
        return _HandOver(run_original(diffusion_model, family, kind, index, args, extra))
    return patch


def branch_options(model_options: dict, counts: dict[str, int], layers: dict[str, tuple[int, ...]],
                   first: tuple[str, int], kept: dict) -> dict:
    """model_options for the skip branch resumed at block `first` from the kept state: every block before it
    is the identity (its work is in the kept state), `first` hands the kept state on, the skipped ones are the
    identity."""
    kind, index = first
    before = {DOUBLE: tuple(range(index)) if kind == DOUBLE else tuple(range(counts[DOUBLE])),
              SINGLE: tuple(range(index)) if kind == SINGLE else ()}
    options = skip_options(model_options, {k: before[k] + tuple(i for i in layers.get(k, ()) if (k, i) != first)
                                           for k in (DOUBLE, SINGLE)})

    def resume(args, extra):
        return dict(args, **kept)
    return comfy.model_patcher.set_model_options_patch_replace(options, resume, "dit", kind, index)


def why_not_forkable(args) -> str | None:
    """None when the kept cond rows are the whole cond prediction's input, else the reason they are not."""
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
