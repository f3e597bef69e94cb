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


def start_server(tmp_path_factory, front_end_root: Path | None = None) -> LiveServer:
    """ComfyUI's own server (main.py, in the host venv) with the pack and the fixture packs, on a fresh base
    directory; front_end_root: a frontend's static folder to serve instead of the host's own."""
    comfy_dir = comfyui_path()
    python = os.environ.get("SNRT_PYTHON") or pytest.fail("SNRT_PYTHON is unset: run `python3 -m tools test`")
    base = harness.make_base_directory(FIXTURE_PACKS)
    port = harness.free_port()
    log_path = tmp_path_factory.mktemp("server") / "comfyui.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(harness.server_command(comfy_dir, Path(python), base, port, front_end_root),
                                cwd=comfy_dir, stdout=log_file, stderr=subprocess.STDOUT)
    server = LiveServer(port, proc, log_path, base)
    try:
        harness.wait_for_server(port, proc)
    except Exception:
        proc.kill()
        pytest.fail(f"ComfyUI did not start:\n{server.log()[-4000:]}", pytrace=False)
    return server


def stop_server(server: LiveServer) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()


def place_public_model_files(server: LiveServer) -> None:
    from tools import build_workflows
    for folder, names in build_workflows.MODEL_FILES.items():
        (server.base / "models" / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            (server.base / "models" / folder / name).write_bytes(b"")
    from PIL import Image  # the training workflow's image: LoadImage lists only real images
    for name in build_workflows.INPUT_FILES:
        Image.new("RGB", (64, 64), (128, 96, 64)).save(server.base / "input" / name)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> LiveServer:
    """The host's server with its own frontend, for HTTP tests (the browser tests use browser_server)."""
    server = start_server(tmp_path_factory)
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def public_model_files(live_server) -> None:
    """The public model file names the workflows use, as empty placeholders in the server's models
    folders, so the loaders' lists offer them (these tests check graphs, not weights)."""
    place_public_model_files(live_server)


# ---- Browser fixtures -------------------------------------------------------------------------------
# Every browser test module (tests/test_browser*.py) builds on these; their names are stable:
#   frontend        (session, parametrised) the Frontend under test: the host's own, as its requirements.txt
#                   pins it (1.32.9 on 0.3.75, 1.49.6 on 0.33.0), and, on hosts from
#                   harness.FRONTEND_HOSTS_FROM on, harness.NEWEST_FRONTEND (the newest on PyPI, pinned),
#                   which `python3 -m tools test` installs into the cache and the server serves with
#                   --front-end-root. Test ids carry `host-frontend` or `frontend-1.58.1`; so every test that
#                   uses one of the fixtures below runs once per frontend.
#   browser_server  (session) a LiveServer serving `frontend`, with public_model_files placed: live_server
#                   itself for the host's frontend, a second server of the same host for the newer one.
#   browser         (module) Debian's Chromium under Playwright, headless.
#   editor          (module) a Page on browser_server with the graph editor ready (the pack's nodes
#                   registered), the frontend's version checked against `frontend.version`, screenshot
#                   settings applied; page.page_errors lists uncaught page errors, page.frontend the Frontend.
# 0.3.75 gets the host frontend only: 1.58.1 loads there, but its queue and history call /api/jobs,
# which 0.3.75 does not have (404s in the console).
CHROMIUM = "/usr/bin/chromium"
# Without the networking flags Chromium keeps dialling Google, which this machine refuses.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync", "--disable-quic"]
GRAPH_READY = """() => window.app && window.app.graph && window.LiteGraph
    && Object.keys(window.LiteGraph.registered_node_types).some(t => t.startsWith('SNRT'))"""
# Screenshot settings: full detail at any zoom (no low-detail boxes), no minimap over the graph.
SCREENSHOT_SETTINGS = """async () => {
    const settings = window.app.extensionManager.setting;
    await settings.set('LiteGraph.Canvas.MinFontSizeForLOD', 0);
    await settings.set('Comfy.Minimap.Visible', false);
}"""


class Frontend:
    """A frontend the browser tests run on: `name` "host" (the host's own) or its version; `version` what
    the page must report (window.__COMFYUI_FRONTEND_VERSION__); `root` the static folder to serve, None
    for the host's own."""

    def __init__(self, name: str, version: str, root: Path | None):
        self.name, self.version, self.root = name, version, root

    @property
    def is_host_frontend(self) -> bool:
        return self.root is None

    def __repr__(self) -> str:
        return f"Frontend({self.name}, {self.version})"


def host_frontend_version(comfy: Path) -> str:
    """The frontend the host's requirements.txt pins (what its venv installs and its server serves)."""
    for line in (comfy / "requirements.txt").read_text().splitlines():
        name, _, pin = line.split("#", 1)[0].strip().partition("==")
        if harness.requirement_name(name) in ("comfyui-frontend-package", "comfyui_frontend_package"):
            return pin.strip()
    pytest.fail(f"{comfy}/requirements.txt pins no comfyui-frontend-package", pytrace=False)


def frontend_names() -> list[str]:
    """The frontends this host's browser tests run on (the host from SNRT_COMFYUI_VERSION, as
    `python3 -m tools test` sets it; unset, the fixtures fail in comfyui_path())."""
    version = os.environ.get("SNRT_COMFYUI_VERSION", "")
    return ["host"] + ([harness.NEWEST_FRONTEND] if version and harness.serves_newest_frontend(version) else [])


@pytest.fixture(scope="session", params=frontend_names(),
                ids=lambda name: "host-frontend" if name == "host" else f"frontend-{name}")
def frontend(request) -> Frontend:
    if request.param == "host":
        return Frontend("host", host_frontend_version(comfyui_path()), None)
    root = harness.frontend_root(request.param)
    installed = harness.installed_frontend_version(root)
    if installed != request.param:
        pytest.fail(f"comfyui-frontend-package=={request.param} is not installed at {root} (found {installed}): "
                    "`python3 -m tools test` installs it (tools/host.py install_frontend)", pytrace=False)
    return Frontend(request.param, request.param, root)


@pytest.fixture(scope="session")
def browser_server(request, frontend, tmp_path_factory) -> LiveServer:
    if frontend.is_host_frontend:
        request.getfixturevalue("public_model_files")
        yield request.getfixturevalue("live_server")
        return
    server = start_server(tmp_path_factory, frontend.root)
    place_public_model_files(server)
    log = server.log()
    assert f"web root: {frontend.root}" in log, f"the server does not say it serves {frontend.root}:\n{log[-2000:]}"
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def browser(comfy_host):
    # Per module, and after comfy_host: Playwright's sync API keeps an event loop running while it is open, and
    # the in-process host's asyncio calls (its start, loading the pack again) cannot run beside it.
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: `python3 -m tools test` installs Debian's chromium", pytrace=False)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def editor(browser, browser_server, frontend):
    page = browser.new_page(viewport={"width": 1800, "height": 1000})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(browser_server.url("/"))
    page.wait_for_function(GRAPH_READY, timeout=120_000)
    served = page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__")
    assert served == frontend.version, f"the page runs frontend {served}, not {frontend.version} ({frontend.name})"
    page.evaluate(SCREENSHOT_SETTINGS)
    page.page_errors, page.frontend = errors, frontend
    yield page
    page.close()
