"""The bundled workflows in the real graph editor: Debian's Chromium, driven by Playwright, opens the
frontend the live server serves, loads each workflow from the Templates browser the way a user
does, and checks that no node is missing and that every node shows the bundled widget values.
Runs once per frontend (the `frontend` fixture in conftest.py: the host's own, and on the newer host the
newest frontend on PyPI, pinned). A screenshot per workflow goes to artifacts/screenshots/ for the host's
frontend (docs/workflows.md's pictures come from there), artifacts/screenshots/frontend-<version>/ for the other."""
import json
import urllib.request
from pathlib import Path

import pytest

from tools import build_workflows, workflow_tools

from tools import host as harness

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
# What the editor shows for every node of the loaded graph. Node ids are numbers in frontend 1.32 and
# strings in 1.49 (subgraph-era LiteGraph); both read back as the number the workflow file holds.
GRAPH_STATE = """() => window.app.graph.nodes.map(n => ({
    id: Number(n.id), raw_id: String(n.id), type: n.type, title: n.title, registered: !!window.LiteGraph.registered_node_types[n.type],
    has_errors: !!n.has_errors, size: [n.size[0], n.size[1]], bounds: Array.from(n.getBounding()),
    widgets: (n.widgets || []).filter(w => w.serialize !== false).map(w => w.value),  // not saved: Preview as Text's display
    combos: (n.widgets || []).filter(w => w.type === 'combo').map(w => {
        const values = w.options && w.options.values;
        return {name: w.name, value: w.value, offered: typeof values === 'function' ? values(w, n) : values};
    })}))"""
# The frontend's news banner over the tabs: its last button closes it.
CLOSE_BANNER = """() => {
    const text = Array.from(document.querySelectorAll('body *'))
        .find(e => e.childElementCount === 0 && (e.textContent || '').startsWith('Introducing Nodes 2.0'));
    let box = text;
    while (box && box.querySelectorAll('button').length < 2) box = box.parentElement;
    if (box) Array.from(box.querySelectorAll('button')).pop().click();
}"""
# What the editor says on load: frontend 1.32 reports missing nodes or models in a dialog (.p-dialog),
# 1.49 in a notice over the canvas (role="status"); toasts and alerts in either.
# 1.58 as 1.49, with a "Warning" heading. Two problems at once read "2 errors found" in 1.49 and 1.58.
NOTICE_SELECTOR = ".p-dialog, [role=dialog], [role=alertdialog], [role=alert], [role=status], .p-toast-message"
VISIBLE_NOTICES = f"""() => Array.from(document.querySelectorAll('{NOTICE_SELECTOR}'))
    .filter(d => d.offsetParent !== null && d.innerText.trim()).map(d => d.innerText.slice(0, 300))"""


def open_template(page, stem: str) -> None:
    """Templates (sidebar) → the pack's section → the workflow's card, as a user clicks them."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    pack_entry = page.get_by_text("snr_toolkit", exact=True)
    first_visit, page.templates_opened = not getattr(page, "templates_opened", False), True
    try:  # on a first visit the frontend opens Templates by itself
        pack_entry.first.wait_for(state="visible", timeout=10_000 if first_visit else 1)
    except PlaywrightTimeout:
        page.get_by_text("Templates", exact=True).first.click()
    pack_entry.first.click()
    page.get_by_text(stem, exact=True).first.click()


def combos_not_offered(state) -> list[str]:
    """Dropdowns whose value is not among the choices the server offers (a missing model file, an unknown
    scheduler): what 1.49 and 1.58 report as missing models, and what 1.32 shows without a word."""
    return [f"{n['id']} ({n['type']}) {c['name']}={c['value']!r}" for n in state for c in n["combos"]
            if not isinstance(c["offered"], list) or c["value"] not in c["offered"]]


def screenshot_folder(frontend) -> Path:
    return SCREENSHOTS if frontend.is_host_frontend else SCREENSHOTS / f"frontend-{frontend.version}"


def boxes_overlap(a, b) -> bool:
    """[x, y, w, h] boxes (title bar included) that share more than a sliver."""
    return a[0] + 4 < b[0] + b[2] and b[0] + 4 < a[0] + a[2] and a[1] + 4 < b[1] + b[3] and b[1] + 4 < a[1] + a[3]


def test_the_editor_runs_the_frontend_meant(editor, frontend):
    """The page reports the version this run is for: the host's pin, or the newest one served from its folder
    (the editor fixture checks it too, for every browser module)."""
    served = editor.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__")
    assert served == frontend.version
    if not frontend.is_host_frontend:
        assert served == harness.NEWEST_FRONTEND
        index = urllib.request.urlopen(editor.url, timeout=30).read()
        assert index == (frontend.root / "index.html").read_bytes(), "the server's page is not the folder's index.html"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_loads_in_the_graph_editor_with_its_values(editor, browser_server, path):
    bundled = json.loads(path.read_text())
    object_info = browser_server.get_json("/object_info")
    if path.stem not in build_workflows.for_host(object_info):  # the other Train LoRA's file: this host refuses it
        assert any("TrainLoraNode" in p for p in workflow_tools.validate(bundled, object_info))
        return
    expected = {n["id"]: n for n in bundled["nodes"]}
    open_template(editor, path.stem)
    editor.wait_for_function(
        f"() => window.app.graph.nodes.length === {len(expected)} && "
        f"window.app.graph.nodes.some(n => String(n.id) === '{bundled['nodes'][-1]['id']}' "
        f"&& n.type === '{bundled['nodes'][-1]['type']}')",
        timeout=60_000)
    editor.wait_for_timeout(500)  # let dialogs the load raises appear
    notices = editor.evaluate(VISIBLE_NOTICES)
    assert not notices, f"the editor raised a dialog or notice on load (missing nodes or models?): {notices}"

    state = {n["id"]: n for n in editor.evaluate(GRAPH_STATE)}
    shots = screenshot_folder(editor.frontend)
    shots.mkdir(parents=True, exist_ok=True)
    (shots / f"{path.stem}.json").write_text(json.dumps(list(state.values()), indent=1))
    assert set(state) == set(expected)
    assert all(n["raw_id"] == str(n["id"]) for n in state.values()), "node ids the editor rewrote"
    missing = [f"{n['id']} ({n['type']})" for n in state.values() if not n["registered"] or n["has_errors"]]
    assert not missing, f"nodes the editor does not know or marks red: {missing}"
    assert not combos_not_offered(state.values()), f"values the server does not offer: {combos_not_offered(state.values())}"
    for node_id, node in expected.items():
        shown = state[node_id]
        assert shown["type"] == node["type"]
        assert shown["widgets"] == node.get("widgets_values", []), \
            f"node {node_id} ({node['type']}) shows {shown['widgets']}, the workflow holds {node.get('widgets_values')}"
        assert shown["size"][0] > 0 and shown["size"][1] > 0
    assert any(n["type"].startswith("SNRT") for n in state.values())
    overlaps = [f"{a['id']} ({a['title']}) and {b['id']} ({b['title']})" for a in state.values() for b in state.values()
                if a["id"] < b["id"] and boxes_overlap(a["bounds"], b["bounds"])]
    assert not overlaps, f"nodes drawn over each other: {overlaps}"

    editor.evaluate(CLOSE_BANNER)
    editor.evaluate("() => window.app.extensionManager.command.execute('Comfy.Canvas.FitView')")  # "Zoom to fit"
    editor.wait_for_timeout(800)
    editor.screenshot(path=str(shots / f"{path.stem}.png"))
    assert not editor.page_errors, editor.page_errors


@pytest.mark.parametrize("broken_type, broken_name", [("SNRTRescaleCFG", "SNRTNoSuchNode"),
                                                     ("CheckpointLoaderSimple", "snrt_no_such_checkpoint.safetensors")],
                         ids=["missing-node", "missing-model"])
def test_the_checks_see_a_missing_node_or_model(editor, broken_type, broken_name):
    """The load checks above see what they look for on this frontend: a workflow with a node type nobody
    registers reads back unregistered and raises a notice naming it; one with a checkpoint the server does
    not have shows a value not offered, and on 1.49 and later a notice naming it (1.32 says nothing).
    Last in the module: the notice stays up in this page."""
    bundled = json.loads((ROOT / "workflows" / "sdxl_vpred_ztsnr_ksampler.json").read_text())
    node = next(n for n in bundled["nodes"] if n["type"] == broken_type)
    if broken_type == "CheckpointLoaderSimple":
        node["widgets_values"][0] = broken_name
    else:
        node["type"] = broken_name
    editor.evaluate("(workflow) => window.app.loadGraphData(workflow, true, true, 'snrt_broken_' + Date.now())",
                    bundled)
    editor.wait_for_function(f"() => window.app.graph.nodes.length === {len(bundled['nodes'])} && "
                             f"window.app.graph.nodes.some(n => String(n.id) === '{node['id']}' "
                             f"&& n.type === '{node['type']}')", timeout=60_000)
    state = editor.evaluate(GRAPH_STATE)
    if broken_type == "CheckpointLoaderSimple":
        assert combos_not_offered(state) == [f"{node['id']} (CheckpointLoaderSimple) ckpt_name={broken_name!r}"]
    else:
        assert [n["id"] for n in state if not n["registered"]] == [node["id"]]
        assert not combos_not_offered(state)
    if broken_type == "CheckpointLoaderSimple" and harness.version_tuple(editor.frontend.version) < (1, 49):
        return
    editor.wait_for_function(f"(name) => Array.from(document.querySelectorAll('{NOTICE_SELECTOR}'))"
                             ".some(d => d.offsetParent !== null && d.innerText.includes(name))",
                             arg=broken_name, timeout=10_000)
    assert any(broken_name in notice for notice in editor.evaluate(VISIBLE_NOTICES))
