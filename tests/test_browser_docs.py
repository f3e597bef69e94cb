"""The node documentation panel in the real browser: Debian's Chromium under Playwright (conftest's browser
fixtures, so once per frontend) selects a pack node, clicks the selection toolbox's Node Info button as a user
does, and reads the panel: it must show the pack's own help page (web/docs, tools/help_pages.py), picture
included, in English and, with the frontend's 'Comfy.Locale' setting on ja, in Japanese.

On a failed fetch the frontend shows the node's one-line description instead, so the checks look for what only
the page has: its "When to use it" section and its picture."""
import pytest

from conftest import GRAPH_READY
from tools import help_pages

NODE = "SNRTScheduler"  # a page with a picture
PICTURE = help_pages.NODES[NODE]["pictures"][0]
# A node alone on an empty graph, selected, so the selection toolbox (and its Node Info button) shows.
ADD_AND_SELECT = """(nodeType) => {
    window.app.graph.clear();
    const node = window.LiteGraph.createNode(nodeType);
    node.pos = [500, 300];
    window.app.graph.add(node);
    window.app.canvas.selectNode(node);
    window.app.canvas.setDirty(true, true);
}"""
SET_LOCALE = "async (locale) => { await window.app.extensionManager.setting.set('Comfy.Locale', locale); }"
PICTURE_LOADED = """(name) => Array.from(document.querySelectorAll('img'))
    .filter(img => img.getAttribute('src').endsWith('/docs/images/' + name) && img.offsetParent !== null)
    .map(img => ({src: img.getAttribute('src'), width: img.naturalWidth, complete: img.complete}))"""


def open_node_help(page, locale: str) -> None:
    """With the frontend in `locale` (set, then the page reloaded, as a user changing the language setting sees
    it): the node on the canvas, selected, and its Node Info button clicked."""
    page.evaluate(SET_LOCALE, locale)
    page.reload()
    page.wait_for_function(GRAPH_READY, timeout=120_000)
    assert page.evaluate("() => window.app.extensionManager.setting.get('Comfy.Locale')") == locale
    page.wait_for_timeout(1000)
    page.keyboard.press("Escape")  # the Templates dialog some frontends open on a fresh start
    page.evaluate(ADD_AND_SELECT, NODE)
    page.get_by_test_id("info-button").click(timeout=30_000)


@pytest.fixture(scope="module")
def docs_editor(editor):
    """The editor page; afterwards its locale back to English (the server's settings outlive this module)."""
    yield editor
    editor.evaluate(SET_LOCALE, "en")


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_the_node_documentation_panel_shows_the_packs_page(docs_editor, locale):
    page = docs_editor
    column = help_pages.LANGUAGES.index(locale)
    open_node_help(page, locale)
    when_heading = help_pages.LABELS[locale]["when"]
    first_use = help_pages.NODES[NODE]["when"][0][column]
    page.get_by_text(first_use).wait_for(state="visible", timeout=30_000)
    assert page.get_by_role("heading", name=when_heading).first.is_visible(), f"no '{when_heading}' heading"
    # the page's own texts in this language, not another's
    for other, texts in enumerate(help_pages.NODES[NODE]["when"][0]):
        if other != column and texts != first_use:
            assert page.get_by_text(texts).count() == 0, f"{help_pages.LANGUAGES[other]} text on the {locale} page"
    inputs_heading = help_pages.LABELS[locale]["inputs"]
    assert page.get_by_role("heading", name=inputs_heading).first.is_visible()
    # the picture, at the URL the frontend makes from images/<name> (the pack's docs folder), loaded
    page.wait_for_function(f"() => ({PICTURE_LOADED})('{PICTURE}').some(i => i.complete && i.width > 0)",
                           timeout=30_000)
    shown = page.evaluate(PICTURE_LOADED, PICTURE)
    assert all(i["src"] == f"/extensions/snr_toolkit/docs/images/{PICTURE}" for i in shown), shown
    assert not page.page_errors, page.page_errors
