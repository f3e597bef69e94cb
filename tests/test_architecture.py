"""The import rules docs/ARCHITECTURE.md states, checked on every .py of the pack with `ast`.

Absolute imports are classified against the running host's ComfyUI source tree (its top-level modules
and packages), so "ComfyUI" means what ComfyUI ships, not a list written here; relative imports are the
pack's own folders.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE = ("schedules", "samplers")
#: Folders that are not part of the installed pack (developer tooling, tests, outputs).
NOT_PACK = ("tools", "tests", "benchmarks", "artifacts", "docs", "workflows", "locales", ".ci", ".git")
#: Where nodes/ still reaches a ComfyUI module other than comfy_api, by name; each must still be in use.
NODE_EXCEPTIONS: set[tuple[str, str]] = set()  # (node file, ComfyUI module) pairs allowed past the doors


@pytest.fixture(scope="module")
def comfy_modules() -> frozenset[str]:
    """The top-level modules and packages of the host's ComfyUI (what `import X` would find there)."""
    path = os.environ.get("SNRT_COMFYUI") or pytest.fail("run the suite with `python3 -m tools test`", pytrace=False)
    names = {p.stem if p.is_file() else p.name for p in Path(path).iterdir()
             if (p.is_file() and p.suffix == ".py") or (p.is_dir() and any(p.glob("*.py")))}
    assert {"comfy", "comfy_api", "comfy_extras", "nodes", "folder_paths", "comfyui_version"} <= names, names
    return frozenset(names)


def imports(relative_path: str, source: str) -> list[tuple[str, bool]]:
    """(dotted module, is_relative) for every import in `source`; relative ones resolved from the pack's
    root (`from ..internals import cfg` in nodes/x.py gives "internals" and "internals.cfg")."""
    package = relative_path.split("/")[:-1]  # the file's package, as path parts from the pack root
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, False) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.append((node.module, False))
        elif isinstance(node, ast.ImportFrom):
            if node.level - 1 > len(package):
                raise AssertionError(f"{relative_path}: relative import above the pack's root")
            base = package[:len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            found.append((".".join(base), True))
            found += [(".".join(base + [alias.name]), True) for alias in node.names]
    return found


def violations(relative_path: str, source: str, comfy_modules) -> list[str]:
    """Which of ARCHITECTURE.md's import rules this pack file breaks."""
    folder = relative_path.split("/")[0] if "/" in relative_path else ""
    broken = []
    for module, relative in imports(relative_path, source):
        top = module.split(".")[0]
        comfy = not relative and top in comfy_modules
        pack_part = top if relative else None
        if pack_part in ("tools", "tests") or (not relative and top in ("tools", "tests", "snr_toolkit")):
            broken.append(f"{relative_path}: the pack imports {module} (tooling/tests/itself by name)")
        if folder in PURE and comfy:
            broken.append(f"{relative_path}: pure folder imports ComfyUI's {module}")
        if folder in PURE and pack_part in ("nodes", "internals"):
            broken.append(f"{relative_path}: pure folder imports the pack's {module}")
        if folder == "nodes" and comfy and top != "comfy_api" and (relative_path, module) not in NODE_EXCEPTIONS:
            broken.append(f"{relative_path}: node imports ComfyUI's {module}; reach it through an internals/ door")
        if folder == "internals" and pack_part == "nodes":
            broken.append(f"{relative_path}: a door imports the pack's {module}")
    return broken


def pack_files() -> dict[str, str]:
    files = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in ROOT.rglob("*.py")
             if p.relative_to(ROOT).parts[0] not in NOT_PACK}
    for folder in ("schedules", "samplers", "nodes", "internals"):
        assert any(f.startswith(folder + "/") for f in files), f"found no modules in {folder}/"
    assert {"__init__.py", "errors.py", "internals/dit.py", "nodes/skip_layer_guidance.py"} <= files.keys()
    return files


def test_every_pack_module_follows_the_import_rules(comfy_modules):
    files = pack_files()
    broken = [v for path, source in files.items() for v in violations(path, source, comfy_modules)]
    assert not broken, "\n".join(broken)


def test_the_rules_see_what_the_pack_really_imports(comfy_modules):
    # The classifier must recognise the imports the rules are about where they really occur.
    files = pack_files()
    seen = {path: imports(path, source) for path, source in files.items()}
    assert ("internals.dit", True) in seen["nodes/skip_layer_guidance.py"]
    assert any(m.startswith("comfy.") for m, rel in seen["internals/dit.py"] if not rel)
    node_files = [p for p in files if p.startswith("nodes/")]
    assert all(any(m.startswith("comfy_api") for m, rel in seen[p] if not rel) for p in node_files), node_files
    # Every door imports ComfyUI; nodes/ and internals/ together are where the pack meets it.
    for path in files:
        if path.startswith("internals/") and path != "internals/__init__.py":
            assert any(m.split(".")[0] in comfy_modules for m, rel in seen[path] if not rel), path


def test_each_exception_is_still_needed(comfy_modules):
    # An exception that no longer occurs must leave the list (and ARCHITECTURE.md) with it.
    files = pack_files()
    for path, module in NODE_EXCEPTIONS:
        assert (module, False) in imports(path, files[path]), f"{path} no longer imports {module}: drop the exception"


@pytest.mark.parametrize("path, source, expected", [
    ("schedules/x.py", "import comfy.samplers", "pure folder imports ComfyUI's comfy.samplers"),
    ("samplers/x.py", "from folder_paths import get_folder_paths", "pure folder imports ComfyUI's folder_paths"),
    ("samplers/x.py", "from ..internals import dit", "pure folder imports the pack's internals"),
    ("schedules/x.py", "from .. import nodes", "pure folder imports the pack's nodes"),
    ("nodes/x.py", "import comfy.model_management", "node imports ComfyUI's comfy.model_management"),
    ("nodes/x.py", "from comfy_extras.nodes_custom_sampler import SamplerCustom", "node imports ComfyUI's comfy_extras"),
    ("nodes/x.py", "import nodes", "node imports ComfyUI's nodes"),
    ("internals/x.py", "from ..nodes.scheduler import SNRTScheduler", "a door imports the pack's nodes"),
    ("internals/x.py", "from ..nodes import NODES", "a door imports the pack's nodes"),
    ("nodes/x.py", "from ..tools import host", "the pack imports tools"),
    ("errors.py", "import tests.conftest", "the pack imports tests.conftest"),
    ("internals/x.py", "from snr_toolkit.schedules import ztsnr", "the pack imports snr_toolkit.schedules"),
])
def test_each_rule_can_fail(comfy_modules, path, source, expected):
    assert any(expected in v for v in violations(path, source, comfy_modules)), violations(path, source, comfy_modules)


def test_allowed_imports_pass(comfy_modules):
    allowed = {"nodes/x.py": "from comfy_api.latest import io\nfrom ..internals.cfg import calc_cond_batch\n"
                             "from ..schedules.ztsnr import NOVELAI_TERMINAL_SIGMA\nfrom .schema import schema",
               "internals/x.py": "import comfy.samplers\nfrom ..errors import SNRToolkitError\nfrom . import require",
               "schedules/x.py": "import torch\nfrom .shapes import SHAPES\nfrom ..errors import SNRToolkitError"}
    assert {p: violations(p, s, comfy_modules) for p, s in allowed.items()} == {p: [] for p in allowed}
