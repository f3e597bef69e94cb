"""The pack imported as the package `snr_toolkit`, the way the pure tests and tools use it (ComfyUI
itself loads it from custom_nodes/ under its folder path instead)."""
from __future__ import annotations

import importlib.util
import sys

from .host import PACK_ROOT


def load_pack(name: str = "snr_toolkit"):
    """Import the repository root as package `name` (importable without ComfyUI: the pure maths)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, PACK_ROOT / "__init__.py",
                                                  submodule_search_locations=[str(PACK_ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
