"""Shared fixtures.

Pure tests import the pack as `snr_toolkit` with torch alone. Host tests run against the real
ComfyUI that `python3 -m tools test` builds (SNRT_COMFYUI): in-process through ComfyUI's own loader,
or as a live server over HTTP. They fail, never skip, when the host is missing.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
import json
from pathlib import Path

import pytest

from tools import host as harness
from tools.pack import load_pack

TESTS = Path(__file__).resolve().parent
FIXTURE_PACKS = [TESTS / "fixtures" / "other_scheduler_pack", TESTS / "fixtures" / "snrt_test_models"]

load_pack("snr_toolkit")


def comfyui_path() -> Path:
    path = os.environ.get("SNRT_COMFYUI")
    if not path:
        pytest.fail("host tests need the ComfyUI host: run the suite with `python3 -m tools test`", pytrace=False)
    return Path(path)


class InProcessHost:
    """ComfyUI imported into this process, with the pack loaded by ComfyUI's own custom-node loader."""

    def __init__(self, base: Path):
        self.base = base
        self.pack_path = str(base / "custom_nodes" / harness.PACK_DIR_NAME)
        import nodes
        self.nodes = nodes

    def pack_module(self, dotted: str = ""):
        """A module of the pack as ComfyUI loaded it (its sys.modules name is the pack's path)."""
        return sys.modules[self.pack_path + ("." + dotted if dotted else "")]

    def node(self, node_id: str):
        return self.nodes.NODE_CLASS_MAPPINGS[node_id]

    def load_pack_again(self) -> bool:
        return asyncio.run(self.nodes.load_custom_node(self.pack_path))


@pytest.fixture(scope="session")
def comfy_host() -> InProcessHost:
    base = harness.make_base_directory(FIXTURE_PACKS)
    nodes = harness.start_in_process(comfyui_path(), base)
    instance = InProcessHost(base)
    assert "SNRTScheduler" in nodes.NODE_CLASS_MAPPINGS, "ComfyUI's loader did not register the pack"
    return instance


@pytest.fixture(scope="session")
def host(comfy_host) -> InProcessHost:
    """comfy_host with comfy.samplers imported (importable only once the host is on sys.path)."""
    import comfy.samplers  # noqa: F401
    return comfy_host


@pytest.fixture(scope="session")
def require_tiny_dit(comfy_host):
    """require(tiny family): go on where this ComfyUI has the family's class; on a ComfyUI older than the door's
    `since` for it, assert the class is absent, then skip (a family newer than the host is not tested there)."""
    from tools import tiny_dits
    door = comfy_host.pack_module("internals.dit")

    def require(tiny_family: str) -> None:
        import comfy.supported_models
        family = next(f for f in door.FAMILIES if f.name == tiny_dits.DOOR_FAMILY[tiny_family])
        if tiny_family in tiny_dits.NEWER_THAN_FAMILY:  # a newer model of an older family (Stable Audio 3)
            since, config_class = tiny_dits.NEWER_THAN_FAMILY[tiny_family]
            if door.version_tuple(comfy_host.pack_module("internals").comfyui_version()) < door.version_tuple(since):
                assert not hasattr(comfy.supported_models, config_class), f"{config_class} is on this ComfyUI"
                pytest.skip(f"{config_class} is new in ComfyUI {since}; this host is older")
        if family.expected_here():
            return
        assert family.model_class() is None, f"{family.name} is on this ComfyUI, older than its `since`"
        pytest.skip(f"{family.name} is new in ComfyUI {family.since}; this host is older and has no such class")
    return require


class LiveServer:
    def __init__(self, port: int, proc: subprocess.Popen, log_path: Path, base: Path):
        self.port, self.proc, self.log_path, self.base = port, proc, log_path, base

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get_json(self, path: str):
        with urllib.request.urlopen(self.url(path), timeout=60) as response:
            return json.load(response)

    def post_json(self, path: str, payload):
        request = urllib.request.Request(self.url(path), data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)

    def run_prompt(self, prompt: dict, timeout_s: float = 600) -> dict:
        """POST an API-format prompt and wait for its /history entry."""
        return self.run_prompt_result(self.post_json("/prompt", {"prompt": prompt})["prompt_id"], timeout_s)

    def run_prompt_result(self, prompt_id: str, timeout_s: float = 600) -> dict:
        """Wait for a queued prompt's /history entry."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            history = self.get_json(f"/history/{prompt_id}")
            if prompt_id in history:  # ComfyUI writes the entry when the prompt has finished or failed
                return history[prompt_id]
            time.sleep(0.5)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout_s:.0f} s")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> LiveServer:
    comfy_dir = comfyui_path()
    python = os.environ.get("SNRT_PYTHON") or pytest.fail("SNRT_PYTHON is unset: run `python3 -m tools test`")
    base = harness.make_base_directory(FIXTURE_PACKS)
    port = harness.free_port()
    log_path = tmp_path_factory.mktemp("server") / "comfyui.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(harness.server_command(comfy_dir, Path(python), base, port), cwd=comfy_dir,
                                stdout=log_file, stderr=subprocess.STDOUT)
    server = LiveServer(port, proc, log_path, base)
    try:
        harness.wait_for_server(port, proc)
    except Exception:
        proc.kill()
        pytest.fail(f"ComfyUI did not start:\n{server.log()[-4000:]}", pytrace=False)
    yield server
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def public_model_files(live_server) -> None:
    """The public model file names the workflows use, as empty placeholders in the server's models
    folders, so the loaders' lists offer them (these tests check graphs, not weights)."""
    from tools import build_workflows
    for folder, names in build_workflows.MODEL_FILES.items():
        (live_server.base / "models" / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            (live_server.base / "models" / folder / name).write_bytes(b"")
