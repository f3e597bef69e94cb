"""What a checkpoint says about how it was trained, read from its safetensors header alone, and the
documented precedence that turns it into a prediction type and ZTSNR (pure: never imports comfy).

Per setting, the highest-ranked source that states it wins; silence is not a statement (a file that lost
its `v_pred` key says nothing about eps). Ranks, and why each sits where it does (docs/checkpoints.md, "Checkpoints
that say how they were trained"):

1. state-dict marker keys `v_pred` / `ztsnr` (empty tensors; ComfyUI's SDXL loader reads them,
   comfy/supported_models.py SDXL.model_type);
2. `modelspec.prediction_type` "v" / "epsilon" (SAI ModelSpec; kohya sd-scripts writes it from
   --v_parameterization, library/sai_model_spec.py);
3. `modelspec.predict_key` "v" / "epsilon" (ComfyUI's CheckpointSave, comfy_extras/nodes_model_merging.py);
4. `modelspec.architecture` "stable-diffusion-v2-768-v" / "stable-diffusion-v2-512" (SAI ModelSpec IDs);
5. `ss_v_parameterization` (third-party writers) and `ss_zero_terminal_snr` (kohya train_network.py);
6. what ComfyUI's loader configured (its own detection).

ZTSNR needs v-prediction (Lin et al. 2023): a ZTSNR statement on an eps model is reported, not applied.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

V, EPS = "v_prediction", "eps"
#: The safetensors format caps its JSON header at 100 MB (safetensors/src/tensor.rs MAX_HEADER_SIZE).
MAX_HEADER_BYTES = 100_000_000
#: Keys ComfyUI's loaders read as markers (SDXL.model_type), listed in the report when present.
MARKER_KEYS = ("v_pred", "ztsnr", "edm_vpred.sigma_max", "edm_mean", "edm_std")

PREDICTION_WORDS = {"v": V, "v_prediction": V, "v-prediction": V, "vpred": V, "v_pred": V, "v-pred": V,
                    "epsilon": EPS, "eps": EPS}
FLAG_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
ARCHITECTURE_PREDICTIONS = {"stable-diffusion-v2-768-v": V, "stable-diffusion-v2-512": EPS}


@dataclass(frozen=True)
class Source:
    name: str
    setting: str  # "prediction" or "zsnr"
    rank: int
    why: str      # why it ranks where it does


_MARKER_KEYS_WHY = ("ComfyUI's own loader reads the marker keys, so a file that already loads right in ComfyUI "
                    "loads the same here; header metadata is often carried over from another file")
SOURCES = {s.name: s for s in (
    Source("key v_pred", "prediction", 1, _MARKER_KEYS_WHY),
    Source("key ztsnr", "zsnr", 1, _MARKER_KEYS_WHY),
    Source("modelspec.prediction_type", "prediction", 2, "the SAI ModelSpec field, written by trainers from "
           "the training setting"),
    Source("modelspec.predict_key", "prediction", 3, "ComfyUI's CheckpointSave writes it from the type its "
           "loader guessed, which sampling patches do not change, so it can repeat a misdetection"),
    Source("modelspec.architecture", "prediction", 4, "an architecture ID; only SD2's 768-v and 512 IDs "
           "name a prediction type"),
    Source("ss_v_parameterization", "prediction", 5, "a third-party convention (kohya sd-scripts does not "
           "write it)"),
    Source("ss_zero_terminal_snr", "zsnr", 5, "a kohya training flag of one training run (mostly LoRA "
           "metadata), which a merge need not share"),
)}


@dataclass(frozen=True)
class Statement:
    source: Source
    value: object  # V / EPS for prediction, True / False for zsnr
    shown: str     # as the file says it


@dataclass(frozen=True)
class Decision:
    prediction: str
    prediction_from: str
    zsnr: bool
    zsnr_from: str
    found: tuple[str, ...]  # every statement the file makes, as it makes it
    notes: tuple[str, ...]  # disagreements (which won and why), values not understood, ZTSNR dropped


def read_safetensors_header(path: str) -> tuple[frozenset[str], dict[str, str]]:
    """Tensor names and `__metadata__` of a .safetensors file from its header alone (an 8-byte
    little-endian length, then that much JSON: the safetensors format); no tensor data is read."""
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError("the file is shorter than a safetensors header")
        length = int.from_bytes(prefix, "little")
        if not 2 <= length <= MAX_HEADER_BYTES:
            raise ValueError(f"header length {length} is not a safetensors header's")
        raw = handle.read(length)
    if len(raw) < length:
        raise ValueError("the header is cut short (incomplete file?)")
    header = json.loads(raw)
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    metadata = metadata if isinstance(metadata, dict) else {}
    return frozenset(header), {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}


def words(value: str) -> str:
    return value.strip().lower()


def statements(keys, metadata: dict[str, str]) -> tuple[list[Statement], list[str]]:
    """What the file states, in precedence order, and the values of known keys it could not read."""
    said, unread = [], []
    if "v_pred" in keys:
        said.append(Statement(SOURCES["key v_pred"], V, "key v_pred"))
    if "ztsnr" in keys:
        said.append(Statement(SOURCES["key ztsnr"], True, "key ztsnr"))
    readers = (("modelspec.prediction_type", PREDICTION_WORDS), ("modelspec.predict_key", PREDICTION_WORDS),
               ("modelspec.architecture", ARCHITECTURE_PREDICTIONS), ("ss_v_parameterization", FLAG_WORDS),
               ("ss_zero_terminal_snr", FLAG_WORDS))
    for name, table in readers:
        if name not in metadata:
            continue
        value = table.get(words(metadata[name]))
        if value is None:
            if name != "modelspec.architecture":  # most architecture IDs say nothing about prediction
                unread.append(f"{name} = {metadata[name][:40]!r} is not a value this loader knows; ignored.")
            continue
        if name == "ss_v_parameterization":
            value = V if value else EPS
        said.append(Statement(SOURCES[name], value, f"{name} = {metadata[name]!r}"))
    return sorted(said, key=lambda s: s.source.rank), unread


def shown_value(setting: str, value) -> str:
    return value if setting == "prediction" else ("ZTSNR on" if value else "ZTSNR off")


def decide(keys, metadata: dict[str, str], loaded_prediction: str, loaded_zsnr: bool) -> Decision:
    """Prediction type and ZTSNR for a discrete-time model by the module's precedence; `loaded_*` is
    what ComfyUI's loader configured, the answer when the file states nothing."""
    said, notes = statements(keys, metadata)

    def pick(setting: str, loaded):
        ranked = [s for s in said if s.source.setting == setting]
        if not ranked:
            return loaded, "ComfyUI's loader; the file states nothing"
        winner = ranked[0]
        for other in ranked[1:]:
            if other.value != winner.value:
                notes.append(f"{other.shown} says {shown_value(setting, other.value)}, {winner.shown} says "
                             f"{shown_value(setting, winner.value)}: {winner.shown} wins ({winner.source.why}).")
        return winner.value, winner.shown

    prediction, prediction_from = pick("prediction", loaded_prediction)
    zsnr, zsnr_from = pick("zsnr", loaded_zsnr)
    if zsnr and prediction != V:
        notes.append(f"{zsnr_from} says ZTSNR, but the prediction is eps: ZTSNR needs v-prediction (at SNR 0 an "
                     "ε model's x0 is undefined; Lin et al. 2023), so it stays off, as ComfyUI reads ztsnr only "
                     "with v_pred.")
        zsnr, zsnr_from = False, f"{zsnr_from} ignored: needs v-prediction"
    return Decision(prediction, prediction_from, bool(zsnr), zsnr_from, tuple(s.shown for s in said), tuple(notes))


def found_line(keys, metadata: dict[str, str]) -> str:
    """One line naming the marker keys and the prediction metadata the header holds."""
    markers = [k for k in MARKER_KEYS if k in keys]
    readers = ("modelspec.prediction_type", "modelspec.predict_key", "modelspec.architecture",
               "ss_v_parameterization", "ss_zero_terminal_snr")
    meta = [f"{k} = {metadata[k][:40]!r}" for k in readers if k in metadata]
    return (f"Found: keys {', '.join(markers) or 'none'}; metadata {', '.join(meta) or 'none'} "
            f"({len(keys)} tensors, {len(metadata)} metadata entries).")
