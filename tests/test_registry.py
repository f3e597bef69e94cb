"""The pack as the Comfy Registry sees it, checked with the registry's own client (comfy-cli, pinned in
the `test` extra of pyproject.toml, so nothing is downloaded at test time):

- `comfy node validate` reports nothing: no configuration warning and no security finding (comfy-cli
  runs ruff with S102 exec, S307 eval and E702 over the whole tree, tests and tools included);
- `comfy node pack` (the same packer `comfy node publish` uploads from) builds an archive that holds what
  a user's ComfyUI loads and none of the test and measurement tooling (see .comfyignore).

Both run as the `comfy` command in a throw-away git repository that holds the files git sees in this
checkout (tracked, plus untracked ones that are not ignored), so the working tree is never written to
and uncommitted work is checked as it will be committed. No network: telemetry is off and comfy-cli's
configuration goes to a temporary HOME.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    from tomllib import loads as toml_loads
except ModuleNotFoundError:  # Python 3.10: tomlkit comes with comfy-cli
    import tomlkit

    def toml_loads(text: str) -> dict:
        return tomlkit.parse(text).unwrap()

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = toml_loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

#: What a user's ComfyUI needs from the archive: each must be there (a folder with at least one file).
RUNTIME_FILES = ["__init__.py", "errors.py", "pyproject.toml", "README.md", "LICENSE", "icon.svg"]
RUNTIME_FOLDERS = ["nodes/", "internals/", "schedules/", "samplers/", "workflows/", "locales/", "web/docs/"]
#: What stays in the repository: nothing under these may be in the archive.
TOOLING_FOLDERS = ["tests/", "tools/", "benchmarks/", "docs/", "artifacts/", ".ci/"]
#: Repository housekeeping, left out too.
HOUSEKEEPING_FILES = [".gitignore", ".comfyignore"]

#: Exactly what `comfy node validate` prints when it finds nothing.
CLEAN_VALIDATION = ["Validating node configuration...", "Running security checks...",
                    "✓ All validation checks passed successfully"]


def pinned_comfy_cli() -> str:
    pins = [req for req in PYPROJECT["project"]["optional-dependencies"]["test"] if req.startswith("comfy-cli")]
    assert len(pins) == 1 and pins[0].startswith("comfy-cli=="), f"the test extra must pin comfy-cli once: {pins}"
    return pins[0].removeprefix("comfy-cli==")


@pytest.fixture(scope="module")
def comfy_cli() -> str:
    """The installed comfy-cli, which must be the pinned one (the test extra installs it)."""
    if importlib.util.find_spec("comfy_cli") is None:
        pytest.fail("comfy-cli is not installed in this environment: it comes with the `test` extra of "
                    "pyproject.toml (the host venv of `python3 -m tools test` installs it)", pytrace=False)
    installed = importlib.metadata.version("comfy-cli")
    assert installed == pinned_comfy_cli(), f"comfy-cli {installed} is installed, the test extra pins {pinned_comfy_cli()}"
    return installed


def git_visible_files() -> list[str]:
    """Files git sees in this checkout: tracked (and still present) plus untracked ones not ignored."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.fail(f"the registry check needs the pack's git checkout and git: {error}", pytrace=False)
    return sorted({name for name in out.split("\0") if name and (ROOT / name).is_file()})


@pytest.fixture(scope="module")
def registry_copy(tmp_path_factory) -> tuple[Path, list[str]]:
    """A fresh git repository holding the files git sees here, every one added to its index (comfy-cli
    packs `git ls-files`, so the index is what matters; no commit is needed)."""
    copy = tmp_path_factory.mktemp("registry") / "snr-toolkit"
    files = git_visible_files()
    for name in files:
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    git = ["git", "-c", "init.defaultBranch=main", "-C", str(copy)]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    return copy, files


def run_comfy(copy: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(HOME=str(home), DO_NOT_TRACK="1", COMFY_NO_TELEMETRY="1", RUFF_NO_CACHE="true",
               NO_COLOR="1", TERM="dumb", COLUMNS="200")
    env.pop("COMFY_OUTPUT", None)
    return subprocess.run([sys.executable, "-m", "comfy_cli", "--skip-prompt", "--no-json", *args], cwd=copy,
                          env=env, capture_output=True, text=True, timeout=300)


def test_comfy_node_validate_reports_nothing(comfy_cli, registry_copy, tmp_path):
    copy, _ = registry_copy
    result = run_comfy(copy, tmp_path, "node", "validate")
    output = (result.stdout + result.stderr).strip()
    print(f"comfy-cli {comfy_cli}, `comfy node validate`:\n{output}")
    assert result.returncode == 0, output
    assert [line.strip() for line in output.splitlines() if line.strip()] == CLEAN_VALIDATION, output
    # The same ruff call comfy-cli makes, asserted on its own: a finding is a file:line, not a wording.
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", ".", "-q", "--no-cache",
                           "--select", "S102,S307,E702", "--exit-zero"], cwd=copy, capture_output=True, text=True)
    assert ruff.returncode == 0 and ruff.stdout == "", ruff.stdout + ruff.stderr


def test_registry_archive_holds_the_runtime_and_no_tooling(comfy_cli, registry_copy, tmp_path):
    copy, files = registry_copy
    result = run_comfy(copy, tmp_path, "node", "pack")
    output = (result.stdout + result.stderr).strip()
    archive = copy / "node.zip"
    assert result.returncode == 0 and archive.is_file(), output
    with zipfile.ZipFile(archive) as zipped:
        infos = zipped.infolist()
    members = sorted(info.filename for info in infos)
    unpacked = sum(info.file_size for info in infos)
    folders: dict[str, int] = {}
    for name in members:
        top = name.split("/", 1)[0] + ("/" if "/" in name else "")
        folders[top] = folders.get(top, 0) + 1
    print(f"comfy-cli {comfy_cli}, `comfy node pack`: node.zip {archive.stat().st_size:,} bytes "
          f"({unpacked:,} unpacked), {len(members)} files")
    for top, count in sorted(folders.items()):
        print(f"  {top:<16} {count} file(s)")
    print("\n".join("    " + name for name in members))

    for name in RUNTIME_FILES:
        assert name in members, f"{name} is not in the registry archive"
    for folder in RUNTIME_FOLDERS:
        assert any(name.startswith(folder) for name in members), f"{folder} is not in the registry archive"
    shipped_tooling = [name for name in members
                       if name.startswith(tuple(TOOLING_FOLDERS)) or name in HOUSEKEEPING_FILES]
    assert not shipped_tooling, f"test and measurement tooling in the registry archive: {shipped_tooling}"
    # Everything else git sees ships: nothing a user needs is dropped by .comfyignore.
    expected = [name for name in files
                if not name.startswith(tuple(TOOLING_FOLDERS)) and name not in HOUSEKEEPING_FILES]
    assert members == expected, (f"missing: {sorted(set(expected) - set(members))}, "
                                 f"unexpected: {sorted(set(members) - set(expected))}")
    with zipfile.ZipFile(archive) as zipped:
        for name in members:
            assert zipped.read(name) == (copy / name).read_bytes(), f"{name} differs in the archive"


def test_pyproject_is_what_the_registry_reads(comfy_cli):
    """The registry's parser (comfy-cli's own) reads the URLs, the icon and the ComfyUI range, and
    pyproject.toml names no file that moved."""
    from comfy_cli.registry.config_parser import extract_node_configuration

    config = extract_node_configuration(str(ROOT / "pyproject.toml"))
    assert config is not None
    urls = config.project.urls
    assert urls.repository.startswith("https://") and urls.documentation.startswith("https://")
    assert urls.issues.startswith("https://")
    assert config.tool_comfy.publisher_id and config.tool_comfy.display_name
    assert (ROOT / config.tool_comfy.icon).is_file()
    assert config.project.supported_comfyui_version == PYPROJECT["tool"]["comfy"]["requires-comfyui"]
    assert config.tool_comfy.includes == []
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "tests/host.py" not in text, "pyproject.toml names tests/host.py, which moved to tools/host.py"
    for path in re.findall(r"\b(?:tests|tools)/[\w/]+\.py\b", text):
        assert (ROOT / path).is_file(), f"pyproject.toml names {path}, which does not exist"


def test_the_host_venv_installs_the_test_extra():
    """tools/host.py builds the venv the suite runs in from TEST_REQUIREMENTS: it must be the test extra,
    or CI would run without the registry's client."""
    from tools import host as harness

    assert sorted(harness.TEST_REQUIREMENTS) == sorted(PYPROJECT["project"]["optional-dependencies"]["test"])
