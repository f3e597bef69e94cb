"""Node help pages (web/docs/, written by tools/help_pages.py for the frontend's node documentation panel):
current with the node schemas and the locales, one per node and language, every picture and link there, and
served by ComfyUI where its frontend fetches them (/extensions/<pack folder>/docs/<NodeId>/<locale>.md, then
/extensions/<pack folder>/docs/<NodeId>.md)."""
import copy
import json
import re
import urllib.error
import urllib.request

import pytest

from tools import help_pages, locales

DOCS = help_pages.DOCS
IMAGE = re.compile(r"(?<!\\)!\[[^\]]*\]\(([^)\s]+)\)|<img\b[^>]*\bsrc=[\"']([^\"']+)")
LINK = re.compile(r"(?<![!\\])\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)\)|<a\b[^>]*\bhref=[\"']([^\"']+)")
WORKFLOW = re.compile(r"`workflows/([^`]+)\.json`")
UNESCAPE = re.compile(r"\\([\\`*_\[\]<>|.)+#-])")
PICTURE_BUDGET = 1_500_000  # bytes, all pictures together


def committed_pages() -> dict[str, str]:
    return {p.relative_to(DOCS).as_posix(): p.read_text(encoding="utf-8") for p in sorted(DOCS.rglob("*.md"))}


def plain(markdown: str) -> str:
    """The page's text with the generator's Markdown escapes undone (the text a reader sees, markup aside)."""
    return UNESCAPE.sub(r"\1", markdown)


@pytest.fixture(scope="module")
def node_ids(comfy_host) -> list[str]:
    return [cls.GET_SCHEMA().node_id for cls in comfy_host.pack_module("nodes").NODES]


@pytest.fixture(scope="module")
def generated(comfy_host) -> dict[str, str]:
    pages, _ = help_pages.pages(comfy_host.nodes)
    return pages


@pytest.fixture(scope="module")
def english(comfy_host) -> dict:
    return locales.english_locale(comfy_host.nodes)


def test_committed_pages_are_what_the_generator_gives_now(generated):
    committed = committed_pages()
    stale = sorted(p for p in generated if committed.get(p) != generated[p])
    assert not stale, f"web/docs is stale for {stale}: run `python3 -m tools helppages`"
    assert sorted(committed.keys() - generated.keys()) == [], "pages no node has: run `python3 -m tools helppages`"


def test_no_text_fell_back_to_english(comfy_host):
    _, missing = help_pages.pages(comfy_host.nodes)
    assert missing == [], "translations missing in locales/: fill them, then run `python3 -m tools helppages`"


def test_every_node_has_a_page_in_every_language(node_ids):
    assert len(node_ids) >= 10 and set(node_ids) == set(help_pages.NODES)
    for node_id in node_ids:
        fallback = DOCS / f"{node_id}.md"
        assert fallback.is_file(), f"{fallback} (the page every other locale falls back to)"
        for language in help_pages.LANGUAGES:
            page = DOCS / node_id / f"{language}.md"
            assert page.is_file() and page.stat().st_size > 500, page
        assert fallback.read_text(encoding="utf-8") == (DOCS / node_id / "en.md").read_text(encoding="utf-8")


def test_each_page_carries_its_languages_texts_defaults_and_ranges(comfy_host, english, node_ids):
    """Every text ComfyUI shows for the node in that language (locales/<lang>, English from the schemas) is on its
    page, and every widget's default and range from the schema."""
    infos = locales.pack_node_infos(comfy_host.nodes)
    for language in help_pages.LANGUAGES:
        table = english if language == "en" else json.loads(locales.locale_path(language).read_text(encoding="utf-8"))
        for node_id in node_ids:
            page = plain((DOCS / node_id / f"{language}.md").read_text(encoding="utf-8"))
            entry = table.get(node_id, {})  # a text a locale lacks is English on the page (and fails the test above)
            texts = [entry.get(k) or english[node_id][k] for k in ("display_name", "description")]
            for part in ("inputs", "outputs"):
                texts += [(entry.get(part, {}).get(key) or {}).get("tooltip") or reference["tooltip"]
                          for key, reference in english[node_id][part].items()]
            texts += [when[help_pages.LANGUAGES.index(language)] for when in help_pages.NODES[node_id]["when"]]
            lacking = [t[:60] for t in texts if t not in page]
            assert not lacking, f"{node_id}/{language}.md lacks {lacking}"
            for section in ("required", "optional"):
                for input_id, (kind, *options) in infos[node_id]["input"].get(section, {}).items():
                    options = options[0] if options else {}
                    assert f"`{input_id}`" in page, f"{node_id}/{language}.md: input {input_id}"
                    if options.get("default") not in (None, ""):
                        assert f"`{help_pages.number(options['default'])}`" in page, f"{node_id}.{input_id} default"
                    if kind in ("INT", "FLOAT"):
                        span = f"{help_pages.number(options['min'])} … {help_pages.number(options['max'])}"
                        assert span in page, f"{node_id}.{input_id} range"


def test_a_changed_tooltip_changes_the_page(comfy_host, monkeypatch):
    """The comparison above can fail: a tooltip changed in the schema (English) or in a locale (ja) gives a page
    that differs from the committed one and carries the new text."""
    infos = locales.pack_node_infos(comfy_host.nodes)
    node_id = "SNRTScheduler"
    changed = copy.deepcopy(infos)
    changed[node_id]["input"]["required"]["steps"][1]["tooltip"] = "A changed tooltip."
    changed[node_id]["input"]["required"]["steps"][1]["default"] = 29
    translated = help_pages.translations()
    translated["ja"][node_id]["inputs"]["steps"]["tooltip"] = "変更したツールチップ。"
    monkeypatch.setattr(locales, "pack_node_infos", lambda nodes: changed)
    pages, _ = help_pages.pages(comfy_host.nodes, translated)
    committed = committed_pages()
    for path, text in (("SNRTScheduler.md", "A changed tooltip."), ("SNRTScheduler/ja.md", "変更したツールチップ。")):
        assert pages[path] != committed[path] and text in pages[path], path
    assert "default `29`" in pages["SNRTScheduler.md"]
    assert pages["SNRTSigmaMaxScale.md"] == committed["SNRTSigmaMaxScale.md"]


def test_every_picture_and_link_in_the_pages_resolves():
    """Pictures: relative paths, resolved as the frontend resolves them (against the pack's docs folder, for the
    pages in NodeId/ too), to a picture in web/docs/images. Links: https only (the 1.32 and 1.49 frontends do not
    rewrite relative links, which would point at ComfyUI's root), each a source of the generator's table.
    Workflows named: bundled files whose graph holds the node."""
    sources = {url for _, url in help_pages.SOURCES.values()}
    used_pictures = set()
    for path, text in committed_pages().items():
        node_id = path.split("/")[0].removesuffix(".md")
        pictures = [a or b for a, b in IMAGE.findall(text)]
        assert len(pictures) == len(help_pages.NODES[node_id]["pictures"]), path
        for src in pictures:
            assert not re.match(r"^(/|[a-z]+:)", src), f"{path}: {src} is not relative"
            target = (DOCS / src).resolve()
            assert target.is_relative_to(DOCS.resolve()) and target.is_file(), f"{path}: {src} → {target}"
            used_pictures.add(target.name)
        links = [a or b for a, b in LINK.findall(text)]
        assert links, f"{path} cites no source"
        for href in links:
            assert href.startswith("https://") and href in sources, f"{path}: link {href}"
        stems = WORKFLOW.findall(text)
        assert stems == help_pages.workflows_using(node_id), path
        for stem in stems:
            workflow = help_pages.WORKFLOWS / f"{stem}.json"
            assert workflow.is_file() and f'"{node_id}"' in workflow.read_text(encoding="utf-8"), f"{path}: {stem}"
    on_disk = {p.name for p in (DOCS / "images").iterdir()}
    assert on_disk == used_pictures == set(help_pages.PICTURES), "pictures no page shows, or shown but missing"


def test_pictures_are_their_sources_cut_as_the_table_says_and_small():
    import numpy as np
    from PIL import Image
    total = 0
    for name, (source, rows) in help_pages.PICTURES.items():
        path = DOCS / "images" / name
        total += path.stat().st_size
        if rows is None:
            assert path.read_bytes() == (help_pages.host.PACK_ROOT / source).read_bytes(), f"{name} is not {source}"
        else:
            shown = np.asarray(Image.open(path).convert("RGB"))
            assert np.array_equal(shown, np.asarray(help_pages.picture(name))), f"{name} is not {source} cut"
    assert total < PICTURE_BUDGET, f"pictures weigh {total} bytes"


def fetch(url: str):
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, "", b""


def test_the_running_server_serves_each_page_and_picture_where_the_frontend_fetches_them(live_server, node_ids):
    info = live_server.get_json("/object_info")
    for node_id in node_ids:
        # the folder as the frontend takes it from python_module (extractCustomNodeName: custom_nodes.<folder>[@v])
        module = info[node_id]["python_module"].split(".")
        assert module[0] == "custom_nodes" and len(module) >= 2, info[node_id]["python_module"]
        base = f"/extensions/{module[1].split('@')[0]}/docs"
        for language in help_pages.LANGUAGES:
            status, kind, body = fetch(live_server.url(f"{base}/{node_id}/{language}.md"))
            assert status == 200 and "text/html" not in kind, (node_id, language, status, kind)
            assert body == (DOCS / node_id / f"{language}.md").read_bytes(), (node_id, language)
        status, kind, body = fetch(live_server.url(f"{base}/{node_id}.md"))
        assert status == 200 and body == (DOCS / f"{node_id}.md").read_bytes(), node_id
        # a locale without a page (here fr) answers 404, so the frontend falls back to NodeId.md
        assert fetch(live_server.url(f"{base}/{node_id}/fr.md"))[0] == 404
    for name in help_pages.PICTURES:
        status, kind, body = fetch(live_server.url(f"{base}/images/{name}"))
        assert status == 200 and kind == "image/png" and body == (DOCS / "images" / name).read_bytes(), name
