"""The training demo's quick mode end to end: trains through ComfyUI's Train LoRA, samples the LoRAs, writes JSON and
the figure (the full run's numbers are in benchmarks/results/ and docs/training.md)."""
import json
import math
import os
import subprocess
import sys

from tools.host import PACK_ROOT


def test_quick_training_demo_writes_results_and_figure(tmp_path):
    out, figure = tmp_path / "demo.json", tmp_path / "demo.png"
    variants = ["ε, standard schedule", "v-prediction + ZTSNR (NovelAI V3)"]
    subprocess.run([sys.executable, "-m", "tools.training_demo", "--quick", "--steps", "8", "--workers", "1",
                    "--out", str(out), "--figure", str(figure), "--variants", *variants],
                   cwd=PACK_ROOT, env=os.environ, check=True, timeout=600)
    payload = json.loads(out.read_text())
    assert sorted(payload["summary"]) == sorted(variants)
    assert payload["steps"] == 8 and len(payload["runs"]) == 2
    for run in payload["runs"]:
        final = run["curve"][-1]
        assert final["step"] == 8
        assert 0.0 <= final["black_white"] <= 1.0
        assert all(math.isfinite(final[k]) for k in ("darkest", "brightest", "global", "local"))
        assert final["darkest"] <= final["brightest"]
    assert figure.stat().st_size > 1000
