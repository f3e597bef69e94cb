"""SNR Toolkit's developer command line (stdlib only: a bare `python3` starts it).

    python3 -m tools test [pytest args]   the whole suite on the host (installs what it needs first,
                                          Debian's chromium for the browser test included)
    python3 -m tools demo [--quick]       the pack's demo on its embedded default (the ideal model)
    python3 -m tools bench [--quick] [--only slg|nodes]   what each node costs (tools/bench.py)
    python3 -m tools quality [--quick] [--flow]  schedule quality on the ideal model (tools/schedule_quality.py)
    python3 -m tools workflows            rebuild workflows/*.json (tools/build_workflows.py)
    python3 -m tools samplers [--quick]   every KSampler sampler on the ideal model (tools/sampler_survey.py)
    python3 -m tools spectrum             pyramid-noise spectrum picture (tools/noise_spectrum.py)
    python3 -m tools locales              regenerate locales/en from the node schemas (tools/locales.py)
    python3 -m tools helppages [--check]  regenerate the node help pages web/docs/ (tools/help_pages.py)
    python3 -m tools traindemo [--quick] the training demo through Train LoRA (tools/training_demo.py)
    python3 -m tools trainbench [--quick] what Training Objective costs in Train LoRA (tools/bench_training.py)
    python3 -m tools loadercost           the metadata loader's cost next to Load Checkpoint (tools/loader_cost.py)
    python3 -m tools serve [--port N]     a ComfyUI server with the pack, until Ctrl-C
    python3 -m tools setup                only build the host; prints where it is

The host is ComfyUI 0.3.75 unless COMFYUI_PATH names another ComfyUI (a checkout or a source
archive), e.g. `COMFYUI_PATH=~/ComfyUI python3 -m tools test`.
"""
from __future__ import annotations

import subprocess
import sys

from . import host

#: command → the module the host venv runs (from the repository root, so `tools` imports as a package).
MODULES = {"demo": "tools.demo", "bench": "tools.bench", "quality": "tools.schedule_quality",
           "workflows": "tools.build_workflows", "samplers": "tools.sampler_survey",
           "spectrum": "tools.noise_spectrum", "locales": "tools.locales", "loadercost": "tools.loader_cost",
           "traindemo": "tools.training_demo", "trainbench": "tools.bench_training",
           "helppages": "tools.help_pages"}


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "test"
    if command in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    if command not in {"test", "serve", "setup", *MODULES}:
        sys.exit(f"unknown command {command!r}; use test, serve, setup or one of {', '.join(MODULES)}")
    comfy, python = host.setup()
    version = host.comfyui_version(comfy)
    env = host.host_environment(comfy, python)
    host.log(f"ComfyUI {version} at {comfy}")
    if command == "setup":
        print(f"ComfyUI {version}: {comfy}\npython: {python}")
        return 0
    if command == "test":
        host.ensure_chromium()
        cmd = [str(python), "-m", "pytest", "-ra", *argv[1:]]  # testpaths in pyproject.toml
    elif command == "serve":
        return host.serve(comfy, python, env, int(argv[argv.index("--port") + 1]) if "--port" in argv else None)
    else:
        cmd = [str(python), "-m", MODULES[command], *argv[1:]]
    host.log("$ " + " ".join(cmd))
    code = subprocess.call(cmd, cwd=host.PACK_ROOT, env=env)
    if command == "test":
        host.log(f"suite on ComfyUI {version}: exit {code}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
