"""Skip Layer Guidance settings: the presets published per DiT family, layer parsing and validation.
Pure Python: the node (nodes/skip_layer_guidance.py) reads the model and hands over its family name and
block counts."""
from __future__ import annotations

import re
from dataclasses import dataclass

DOUBLE, SINGLE = "double_block", "single_block"
GATE_STEPS = "step fraction"
GATE_STEP_RANGE = "step range"
GATE_SIGMA = "sigma percent"
GATES = (GATE_STEPS, GATE_STEP_RANGE, GATE_SIGMA)
#: original: cond, uncond and cond-with-layers-skipped, out = cfg + (cond − cond_skipped)·scale (SD3.5
#: reference, ComfyUI's SkipLayerGuidanceDiT). uncond: the uncond pass runs with the layers skipped, 2 passes
#: (ComfyUI's SkipLayerGuidanceDiTSimple, musubi-tuner's --slg_mode uncond).
MODE_ORIGINAL, MODE_UNCOND = "original", "uncond"
MODES = (MODE_ORIGINAL, MODE_UNCOND)
RECOMMENDED = "recommended for this model"
CUSTOM = "custom"


@dataclass(frozen=True)
class SLGSettings:
    double: tuple[int, ...]
    scale: float
    start: float
    end: float
    gating: str
    single: tuple[int, ...] = ()
    mode: str = MODE_ORIGINAL

    def layers(self) -> dict[str, tuple[int, ...]]:
        return {DOUBLE: self.double, SINGLE: self.single}


@dataclass(frozen=True)
class Preset:
    settings: SLGSettings
    #: The family (or "family block-count" variant, e.g. "SD3 24") it was published for; None: every family.
    model: str | None
    source: str
    recommended: bool = False


PRESETS = {
    "SAI reference": Preset(SLGSettings((7, 8, 9), 2.5, 0.01, 0.20, GATE_STEPS), "SD3 24",
                            "Stability-AI/sd3.5 sd3_infer.py, SD 3.5 Medium's skip_layer_config", recommended=True),
    "diffusers": Preset(SLGSettings((7, 8, 9), 2.8, 0.01, 0.20, GATE_STEPS), "SD3 24",
                        "diffusers StableDiffusion3Pipeline, skip_layer_guidance_scale 2.8 for SD 3.5 Medium"),
    "ComfyUI": Preset(SLGSettings((7, 8, 9), 3.0, 0.01, 0.15, GATE_SIGMA, single=(7, 8, 9)), None,
                      "ComfyUI SkipLayerGuidanceDiT at its defaults, every family"),
    "ComfyUI (uncond)": Preset(SLGSettings((7, 8, 9), 0.0, 0.0, 1.0, GATE_SIGMA, single=(7, 8, 9), mode=MODE_UNCOND),
                               None, "ComfyUI SkipLayerGuidanceDiTSimple at its defaults, every family"),
    "Wan2GP (block 9, uncond)": Preset(SLGSettings((9,), 0.0, 0.10, 0.90, GATE_STEP_RANGE, mode=MODE_UNCOND), "Wan",
                                       "deepbeepmeep/Wan2GP models/_settings.json: perturbation_layers [9], 10–90 % "
                                       "of steps, the negative pass skips", recommended=True),
    "KJNodes (block 10, uncond)": Preset(SLGSettings((10,), 0.0, 0.10, 1.0, GATE_STEP_RANGE, mode=MODE_UNCOND), "Wan",
                                         "kijai/ComfyUI-WanVideoWrapper WanVideoSLG: blocks 10, 0.1–1.0 of steps, "
                                         "the uncond pass skips"),
    "ComfyUI Wan-Fun template (9, 10)": Preset(SLGSettings((9, 10), 3.0, 0.01, 0.80, GATE_SIGMA, single=(9, 10)),
                                               "Wan 30", "Comfy-Org/workflow_templates wan2.1_fun_control.json "
                                               "(Wan2.1-Fun 1.3B): SkipLayerGuidanceDiT 9,10, scale 3, 0.01–0.8"),
    "STGuidance (HunyuanVideo, block 2)": Preset(SLGSettings((2,), 1.0, 0.0, 1.0, GATE_STEP_RANGE), "HunyuanVideo",
                                                 "junhahyung/STGuidance HunyuanVideo/inference.py: "
                                                 "stg_applied_layers_idx [2], scale 1.0, every step",
                                                 recommended=True),
    "STGuidance (Mochi, block 34)": Preset(SLGSettings((34,), 1.0, 0.0, 1.0, GATE_STEP_RANGE), "Mochi",
                                           "junhahyung/STGuidance Mochi/inference.py: block 34, scale 1.0, every step",
                                           recommended=True),
}


def preset_fits(preset: Preset, family: str, counts: dict[str, int]) -> bool:
    if preset.model is None:
        return True
    name, _, blocks = preset.model.partition(" ")
    return name == family and (not blocks or int(blocks) == counts[DOUBLE])


def presets_for(family: str, counts: dict[str, int]) -> list[str]:
    """Names of the family-specific presets that fit this model, recommended first."""
    fitting = [name for name, p in PRESETS.items() if p.model is not None and preset_fits(p, family, counts)]
    return sorted(fitting, key=lambda name: not PRESETS[name].recommended)


def recommended(family: str, counts: dict[str, int]) -> str:
    """The preset published for this family (or "ComfyUI", the one every family has)."""
    return next((name for name in presets_for(family, counts) if PRESETS[name].recommended), "ComfyUI")


def parse_layers(text: str, who: str, allow_empty: bool = False, name: str = "layers") -> tuple[int, ...]:
    """Block indices from '7, 8, 9'."""
    if allow_empty and not (text or "").strip():
        return ()
    if not re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*,?\s*", text or ""):
        raise ValueError(f"{who}: {name} must be block indices separated by commas, like '7, 8, 9'; got {text!r}")
    return tuple(sorted({int(n) for n in re.findall(r"\d+", text)}))


def block_noun(family: str, kind: str, has_single: bool) -> str:
    if family == "SD3":
        return "joint blocks"
    if not has_single:
        return "blocks"
    return "double blocks" if kind == DOUBLE else "single blocks"


def validation_problem(settings: SLGSettings, family: str, counts: dict[str, int]) -> str | None:
    """What is wrong with custom settings on this model (None: nothing)."""
    if not settings.double and not settings.single:
        return "no layers given; SD3.5 Medium's reference skips '7, 8, 9'"
    has_single = counts[SINGLE] > 0
    if settings.single and not has_single:
        return f"{family} has no single blocks: leave single_layers empty"
    for kind, indices in settings.layers().items():
        too_deep = [layer for layer in indices if layer >= counts[kind]]
        if too_deep:
            noun = block_noun(family, kind, has_single)
            return (f"layer {too_deep[0]} is out of range: this model has {counts[kind]} {noun} "
                    f"(0 … {counts[kind] - 1})")
    if not settings.start < settings.end:
        return f"start ({settings.start}) must be below end ({settings.end}); the window would be empty"
    if settings.mode == MODE_ORIGINAL and not settings.scale > 0:
        return "scale must be above 0 (0 disables SLG: leave the node out instead)"
    return None


def first_skipped(settings: SLGSettings, counts: dict[str, int]) -> tuple[str, int] | None:
    """The first block the loop reaches that is skipped (double blocks run before single ones)."""
    double = [i for i in settings.double if i < counts[DOUBLE]]
    single = [i for i in settings.single if i < counts[SINGLE]]
    if double:
        return DOUBLE, double[0]
    return (SINGLE, single[0]) if single else None


def blocks_run_by_branch(settings: SLGSettings, counts: dict[str, int]) -> int:
    """Blocks the forked skip branch still runs: those after the first skipped one that are not skipped."""
    first = first_skipped(settings, counts)
    order = [(DOUBLE, i) for i in range(counts[DOUBLE])] + [(SINGLE, i) for i in range(counts[SINGLE])]
    skipped = {(kind, i) for kind, indices in settings.layers().items() for i in indices}
    return sum(1 for block in order[order.index(first) + 1:] if block not in skipped)
