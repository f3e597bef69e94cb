"""The doors to ComfyUI's internals: one module per internal the pack relies on, named after it.

Each door states its assumptions and checks them against the running ComfyUI with
`contract_problems()`: a list of sentences, each naming the assumption and what changed (empty when
all hold). The contract tests run every door on every host in the matrix; at run time a node asks
`require(door, who)`, which stops with an error naming the ComfyUI change, or, where the node has an
equivalent plain path (the SLG fork), the node asks `problems(door)` and takes that path instead.
Nothing else in the pack reaches into ComfyUI beyond its public node API (`comfy_api`, ModelPatcher
methods) and these doors.
"""
from __future__ import annotations

import functools
import importlib
import logging
from types import ModuleType

from ..errors import SNRToolkitError

#: Every door, by module name (the contract test is parametrised over these).
DOORS = ("dit", "model_sampling", "scheduler_registry", "ksampler", "cfg", "supported_models", "noise", "model_management",
         "checkpoint_loading", "trainer")


def door(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


@functools.lru_cache(maxsize=None)
def _problems_cached(name: str) -> tuple[str, ...]:
    return tuple(door(name).contract_problems())


def problems(name: str, cached: bool = True) -> tuple[str, ...]:
    """What no longer holds of door `name` on this ComfyUI (checked once per process unless cached=False)."""
    if not cached:
        _problems_cached.cache_clear()
    return _problems_cached(name)


def comfyui_version() -> str:
    try:
        import comfyui_version
        return comfyui_version.__version__
    except ImportError:
        return "unknown"


def require(name: str, who: str) -> None:
    """Stop with a clear error when door `name`'s assumptions fail on the running ComfyUI."""
    stop_if(problems(name), who)


def stop_if(found, who: str) -> None:
    """Raise the error naming the ComfyUI change when `found` lists any problem."""
    if found:
        raise SNRToolkitError(
            f"{who}: this ComfyUI ({comfyui_version()}) changed an internal the node relies on, so it stops rather "
            f"than produce a different image: {'; '.join(found)}. SNR Toolkit is tested on ComfyUI 0.3.75 to 0.33.0; "
            "update the pack, or report this with your ComfyUI version.")


def warn_on_load() -> list[str]:
    """Check every door once when ComfyUI loads the pack and log one warning per broken one, so a user
    sees at start-up which nodes will refuse (or fall back) on this ComfyUI; returns the doors that failed."""
    broken = []
    for name in DOORS:
        try:
            found = problems(name)
        except Exception as error:  # noqa: BLE001 — a door that cannot even check is broken too
            found = (f"its check failed ({type(error).__name__}: {error})",)
        if found:
            broken.append(name)
            logging.getLogger("snr_toolkit").warning(
                "SNR Toolkit: ComfyUI %s changed what internals/%s.py relies on: %s", comfyui_version(), name,
                "; ".join(found))
    return broken
