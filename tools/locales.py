"""Build locales/en/nodeDefs.json from the node schemas, the one source of every English text.

Run: python3 -m tools locales [--check]

The pack's nodes are loaded by the real ComfyUI's own loader (in-process), and each node's texts are
read from what ComfyUI serves for it on /object_info (`GET_NODE_INFO_V1()`, built from the V3
`define_schema()`). The file has the structure ComfyUI's frontend reads from a pack's
`locales/<lang>/nodeDefs.json` (as its own scripts/collect-i18n-node-defs.ts writes it):
`{node_id: {display_name, description, inputs: {input_id: {name, tooltip}}, outputs: {"0": {name, tooltip}}}}`.
ja/zh/ko are translations of it, checked for completeness by tests/test_locales.py.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tools import host

LANGUAGES = ("en", "ja", "zh", "ko")
PACK_MODULE = f"custom_nodes.{host.PACK_DIR_NAME}"  # RELATIVE_PYTHON_MODULE ComfyUI gives the pack's nodes


def locale_path(language: str) -> Path:
    return host.PACK_ROOT / "locales" / language / "nodeDefs.json"


def pack_node_infos(nodes) -> dict[str, dict]:
    """node id → the node's /object_info entry, for this pack's nodes in the order ComfyUI registered them."""
    return {node_id: cls.GET_NODE_INFO_V1() for node_id, cls in nodes.NODE_CLASS_MAPPINGS.items()
            if getattr(cls, "RELATIVE_PYTHON_MODULE", None) == PACK_MODULE}


def english_entry(info: dict) -> dict:
    """One node's English locale entry from its /object_info entry."""
    inputs = {}
    for section in ("required", "optional"):  # "hidden" inputs have no widget, so no text
        for input_id, spec in info["input"].get(section, {}).items():
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            inputs[input_id] = {"name": options.get("display_name") or input_id, "tooltip": options.get("tooltip")}
    tooltips = info.get("output_tooltips") or [None] * len(info["output"])
    outputs = {str(i): {"name": name, "tooltip": tooltip}
               for i, (name, tooltip) in enumerate(zip(info["output_name"], tooltips))}
    return {"display_name": info["display_name"], "description": info["description"],
            "inputs": inputs, "outputs": outputs}


def english_locale(nodes) -> dict[str, dict]:
    """The English nodeDefs locale the schemas give, for ComfyUI's `nodes` module with the pack loaded."""
    return {node_id: english_entry(info) for node_id, info in pack_node_infos(nodes).items()}


def dumps(locale: dict) -> str:
    return json.dumps(locale, ensure_ascii=False, indent=2) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only say whether the committed file is current")
    args = parser.parse_args(argv)
    nodes = host.start_in_process(Path(os.environ["SNRT_COMFYUI"]), host.make_base_directory())
    text = dumps(english_locale(nodes))
    path = locale_path("en")
    if args.check:
        current = path.read_text(encoding="utf-8") == text
        print(f"{path.relative_to(host.PACK_ROOT)} is {'current' if current else 'stale: run `python3 -m tools locales`'}")
        return 0 if current else 1
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path.relative_to(host.PACK_ROOT)}: {text.count(chr(10))} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
