"""The bundled workflows in the real graph editor: Debian's Chromium, driven by Playwright, opens the
frontend the live server serves, loads each workflow from the Templates browser the way a user
does, and checks that no node is missing and that every node shows the bundled widget values.
A screenshot per workflow goes to artifacts/screenshots/ (the README's pictures come from there)."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# Without the networking flags Chromium keeps dialling Google, which this machine refuses.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync", "--disable-quic"]

GRAPH_READY = """() => window.app && window.app.graph && window.LiteGraph
    && Object.keys(window.LiteGraph.registered_node_types).some(t => t.startsWith('SNRT'))"""
# What the editor shows for every node of the loaded graph. Node ids are numbers in frontend 1.32 and
# strings in 1.49 (subgraph-era LiteGraph); both read back as the number the workflow file holds.
GRAPH_STATE = """() => window.app.graph.nodes.map(n => ({
    id: Number(n.id), raw_id: String(n.id), type: n.type, title: n.title, registered: !!window.LiteGraph.registered_node_types[n.type],
    has_errors: !!n.has_errors, size: [n.size[0], n.size[1]], bounds: Array.from(n.getBounding()),
    widgets: (n.widgets || []).filter(w => w.serialize !== false).map(w => w.value)}))"""  # not saved: Preview as Text's display
# Screenshot settings: full detail at any zoom (no low-detail boxes), no minimap over the graph.
SCREENSHOT_SETTINGS = """async () => {
    const settings = window.app.extensionManager.setting;
    await settings.set('LiteGraph.Canvas.MinFontSizeForLOD', 0);
    await settings.set('Comfy.Minimap.Visible', false);
}"""
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
VISIBLE_NOTICES = """() => Array.from(document.querySelectorAll(
        '.p-dialog, [role=dialog], [role=alertdialog], [role=alert], [role=status], .p-toast-message'))
    .filter(d => d.offsetParent !== null && d.innerText.trim()).map(d => d.innerText.slice(0, 300))"""


@pytest.fixture(scope="module")
def editor(live_server, public_model_files):
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: `python3 -m tools test` installs Debian's chromium", pytrace=False)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1800, "height": 1000})
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(live_server.url("/"))
        page.wait_for_function(GRAPH_READY, timeout=120_000)
        page.evaluate(SCREENSHOT_SETTINGS)
        page.page_errors = errors
        yield page
        browser.close()


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


def boxes_overlap(a, b) -> bool:
    """[x, y, w, h] boxes (title bar included) that share more than a sliver."""
    return a[0] + 4 < b[0] + b[2] and b[0] + 4 < a[0] + a[2] and a[1] + 4 < b[1] + b[3] and b[1] + 4 < a[1] + a[3]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_loads_in_the_graph_editor_with_its_values(editor, path):
    bundled = json.loads(path.read_text())
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
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / f"{path.stem}.json").write_text(json.dumps(list(state.values()), indent=1))
    assert set(state) == set(expected)
    assert all(n["raw_id"] == str(n["id"]) for n in state.values()), "node ids the editor rewrote"
    missing = [f"{n['id']} ({n['type']})" for n in state.values() if not n["registered"] or n["has_errors"]]
    assert not missing, f"nodes the editor does not know or marks red: {missing}"
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
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    editor.screenshot(path=str(SCREENSHOTS / f"{path.stem}.png"))
    assert not editor.page_errors, editor.page_errors
