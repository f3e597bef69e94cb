"""The pure packages never import comfy, and the pack imports without ComfyUI."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_pure_modules_and_pack_import_without_comfy():
    code = f"""
import importlib, importlib.util, pkgutil, sys
spec = importlib.util.spec_from_file_location("snr_toolkit", r"{ROOT / '__init__.py'}",
                                              submodule_search_locations=[r"{ROOT}"])
pack = importlib.util.module_from_spec(spec); sys.modules["snr_toolkit"] = pack; spec.loader.exec_module(pack)
names = []
for package in ("schedules", "samplers"):
    module = importlib.import_module("snr_toolkit." + package)
    for info in pkgutil.iter_modules(module.__path__):
        importlib.import_module(f"snr_toolkit.{{package}}.{{info.name}}")
        names.append(info.name)
assert names, "no pure modules found"
leaked = sorted(m for m in sys.modules if m == "comfy" or m.startswith(("comfy.", "comfy_api")))
assert not leaked, leaked
print(len(names))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 4
