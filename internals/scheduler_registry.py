"""Door to ComfyUI's scheduler registry (comfy/samplers.py): SCHEDULER_NAMES, SCHEDULER_HANDLERS,
SchedulerHandler and calculate_sigmas, behind every KSampler's scheduler combo.

Assumptions: SCHEDULER_NAMES is a list that KSampler.SCHEDULERS (and every other node's combo) holds
by identity, so names are added in place, never by rebinding; SCHEDULER_HANDLERS maps a name to a
SchedulerHandler(handler) whose handler takes (model_sampling, steps); calculate_sigmas looks names
up there."""
from __future__ import annotations

import inspect
import logging
from typing import Callable

import comfy.samplers

from . import require

log = logging.getLogger("snr_toolkit")


def scheduler_names() -> list[str]:
    """The live list every scheduler combo shows (ours included once registered)."""
    return comfy.samplers.SCHEDULER_NAMES


def calculate_sigmas(model_sampling, scheduler: str, steps: int):
    return comfy.samplers.calculate_sigmas(model_sampling, scheduler, steps)


def register(handlers: dict[str, Callable]) -> bool:
    """Add name → handler(model_sampling, steps) to the registry, in place and idempotently.
    Returns False (and logs why, once) when the registry is not the one this door knows."""
    try:
        require("scheduler_registry", "SNR Toolkit's ztsnr_* KSampler schedulers")
    except ValueError as error:
        log.error("%s The ztsnr_* names are not added; the ZTSNR Scheduler node still works.", error)
        return False
    for name, handler in handlers.items():
        comfy.samplers.SCHEDULER_HANDLERS[name] = comfy.samplers.SchedulerHandler(handler)
        if name not in comfy.samplers.SCHEDULER_NAMES:
            comfy.samplers.SCHEDULER_NAMES.append(name)
    return True


def contract_problems() -> list[str]:
    found = []
    names = getattr(comfy.samplers, "SCHEDULER_NAMES", None)
    handlers = getattr(comfy.samplers, "SCHEDULER_HANDLERS", None)
    if not isinstance(names, list):
        found.append("comfy.samplers.SCHEDULER_NAMES is no longer a list")
    elif getattr(getattr(comfy.samplers, "KSampler", None), "SCHEDULERS", None) is not names:
        found.append("KSampler.SCHEDULERS is no longer the same list object as SCHEDULER_NAMES")
    if not isinstance(handlers, dict):
        found.append("comfy.samplers.SCHEDULER_HANDLERS is no longer a dict")
    handler_class = getattr(comfy.samplers, "SchedulerHandler", None)
    if handler_class is None:
        found.append("comfy.samplers.SchedulerHandler is gone")
    else:
        parameters = list(inspect.signature(handler_class).parameters)
        if not parameters or parameters[0] != "handler":
            found.append(f"SchedulerHandler's first parameter is {parameters[:1]}, not 'handler'")
    calculate = getattr(comfy.samplers, "calculate_sigmas", None)
    if calculate is None or "SCHEDULER_HANDLERS" not in inspect.getsource(calculate):
        found.append("comfy.samplers.calculate_sigmas no longer looks schedulers up in SCHEDULER_HANDLERS")
    return found
