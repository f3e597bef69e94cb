"""Every link and picture in README.md and docs/**/*.md leads somewhere that exists (pure: stdlib and pytest only).

A link target that is a relative path, or a URL into this repository on GitHub
(https://github.com/snr-toolkit/snr-toolkit/blob/main/<path>, `?raw=true` for pictures, /tree/main/<folder>,
https://raw.githubusercontent.com/snr-toolkit/snr-toolkit/main/<path>), must name a file (a folder for /tree/)
of this checkout; an #anchor into a Markdown file must name one of its headings by GitHub's slug rule. Other
URLs are not fetched. The README is also held to what a newcomer reads and what a user's copy holds: at most
250 lines; its relative links point only at files the registry archive ships (.comfyignore leaves docs/,
benchmarks/, tools/ ... out, so those are linked by their GitHub URL); every node of nodes/ has a row that
links its help page web/docs/<NodeId>.md, and every bundled workflow is linked.
"""
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
README_MAX_LINES = 250

REPO = "snr-toolkit/snr-toolkit"
BLOB = f"https://github.com/{REPO}/blob/main/"
TREE = f"https://github.com/{REPO}/tree/main/"
RAW = f"https://raw.githubusercontent.com/{REPO}/main/"

#: Folders the registry archive leaves out even where .comfyignore is missing (it names them too).
NOT_SHIPPED = ("docs/", "benchmarks/", "tools/", "tests/", "artifacts/", ".ci/")

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# [text](target "title") and ![alt](target); the text may run over a line break.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)


def prose_lines(text):
    """(line number, line) outside fenced code blocks."""
    fence = None  # the opening fence while inside a code block
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            continue
        if fence is not None:
            # CommonMark: the block closes at a fence of the same character, at least as long, with no info.
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                    and not match.group(2).strip():
                fence = None
            continue
        yield number, line


def github_slug(heading):
    """GitHub's anchor for a heading: inline markup reduced to its text, lowercase, punctuation dropped,
    each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and pictures: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    """Every anchor GitHub gives the headings of a Markdown file (repeats get -1, -2, …)."""
    seen = {}
    found = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        if slug in seen:
            seen[slug] += 1
            found.add(f"{slug}-{seen[slug]}")
        else:
            seen[slug] = 0
            found.add(slug)
    return found


def links(path):
    """(line number, target) of every Markdown and HTML link or picture outside code."""
    lines = list(prose_lines(path.read_text(encoding="utf-8")))
    # Join the prose so a link text broken over two lines is still one link; keep the line numbers.
    text = ""
    starts = []
    for number, line in lines:
        starts.append((len(text), number))
        text += line + "\n"
    text = CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)  # same length, no code

    def line_of(offset):
        number = starts[0][1] if starts else 1
        for start, n in starts:
            if start > offset:
                break
            number = n
        return number

    found = []
    for pattern in (LINK, HTML_LINK):
        for match in pattern.finditer(text):
            found.append((line_of(match.end(1) - 1), match.group(1)))
    return sorted(found)


def resolve(page, target):
    """(repository path or None, anchor or None, must be a folder): where a link target points inside the
    repository; None for a URL elsewhere, which is not checked."""
    url, _, anchor = target.partition("#")
    anchor = unquote(anchor) or None
    url = url.split("?", 1)[0]  # ?raw=true, ?plain=1
    if re.match(r"^[a-z][a-z0-9+.-]*:", url, re.IGNORECASE):  # a scheme: only this repository's files count
        for prefix, folder in ((BLOB, False), (RAW, False), (TREE, True)):
            if url.startswith(prefix):
                return (ROOT / unquote(url[len(prefix):])).resolve(), anchor, folder
        return None, None, False
    if not url:  # "#anchor" in the same page
        return page.resolve(), anchor, False
    if url.startswith("/"):
        return (ROOT / unquote(url.lstrip("/"))).resolve(), anchor, False
    return (page.parent / unquote(url)).resolve(), anchor, False


CASES = [(page, number, target) for page in PAGES for number, target in links(page)]


def case_id(case):
    page, number, target = case
    return f"{page.relative_to(ROOT)}:{number}:{target}"


def test_the_pages_have_links_to_check():
    assert README.is_file()
    assert any(page == README for page, _, _ in CASES)
    assert len(PAGES) > 1, "docs/ holds no Markdown page"


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_link_resolves(case):
    page, number, target = case
    where = f"{page.relative_to(ROOT)} line {number}: {target}"
    path, anchor, folder = resolve(page, target)
    if path is None:
        pytest.skip("a URL outside this repository")
    assert path == ROOT or ROOT in path.parents, f"{where} leaves the repository"
    if folder:
        assert path.is_dir(), f"{where}: no folder {path.relative_to(ROOT)}"
        return
    assert path.exists(), f"{where}: no file {path.relative_to(ROOT)}"
    if anchor and path.is_file() and path.suffix.lower() == ".md":
        assert anchor in anchors(path), (
            f"{where}: {path.relative_to(ROOT)} has no heading with the anchor #{anchor} "
            f"(it has: {', '.join(sorted(anchors(path)))})")


def test_github_slug_follows_githubs_rule():
    assert github_slug("Flow models: the shift grows with the canvas") == "flow-models-the-shift-grows-with-the-canvas"
    assert github_slug("Samplers on the jump from σ 20000 (measured)") == "samplers-on-the-jump-from-σ-20000-measured"
    assert github_slug("Choosing the defaults: schedule quality") == "choosing-the-defaults-schedule-quality"
    assert github_slug("Pyramid noise: the published algorithm, and where we differ on purpose") == (
        "pyramid-noise-the-published-algorithm-and-where-we-differ-on-purpose")
    assert github_slug("`SNRTScheduler` and [ZTSNR](x.md)") == "snrtscheduler-and-ztsnr"


def test_the_checks_catch_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A heading\n\n[ok](#a-heading) [gone](nowhere.md) `[code](skipped.md)`\n\n"
                    "```bash\n```bash\n# not a heading\n[fenced](skipped.md)\n```\n[two\nlines](" + BLOB
                    + "no/such/file.md)\n", encoding="utf-8")
    found = links(page)
    assert [t for _, t in found] == ["#a-heading", "nowhere.md", BLOB + "no/such/file.md"]
    assert found[2][0] == 11
    assert anchors(page) == {"a-heading"}
    assert not resolve(page, "nowhere.md")[0].exists()
    assert resolve(page, "https://example.org/x.md")[0] is None


def test_readme_is_short():
    count = len(README.read_text(encoding="utf-8").splitlines())
    assert count <= README_MAX_LINES, f"README.md has {count} lines (at most {README_MAX_LINES}): move detail to docs/"


def not_shipped():
    """Path prefixes the registry archive leaves out: .comfyignore's anchored entries and NOT_SHIPPED."""
    prefixes = set(NOT_SHIPPED)
    ignore = ROOT / ".comfyignore"
    if ignore.is_file():
        for line in ignore.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "!")) and line.startswith("/"):
                prefixes.add(line.lstrip("/"))
    return tuple(sorted(prefixes))


def test_readme_links_only_to_what_a_users_copy_holds():
    """The README ships in the registry archive; docs/, benchmarks/, tools/ do not, so a relative link there is
    broken in a user's ComfyUI/custom_nodes copy: link them by their GitHub URL."""
    left_out = not_shipped()
    bad = []
    for number, target in links(README):
        path, _, _ = resolve(README, target)
        if path is None or re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue
        relative = path.relative_to(ROOT).as_posix() + ("/" if path.is_dir() else "")
        if relative.startswith(left_out) or relative in {p.rstrip("/") for p in left_out}:
            bad.append(f"line {number}: {target}")
    assert not bad, f"README.md links relatively into folders the archive leaves out ({', '.join(left_out)}): {bad}"


def node_ids():
    ids = set()
    for module in sorted((ROOT / "nodes").glob("*.py")):
        ids.update(re.findall(r"node_id\s*=\s*[\"']([A-Za-z0-9_]+)[\"']", module.read_text(encoding="utf-8")))
    return sorted(ids)


def test_every_node_has_a_readme_row_linking_its_help_page():
    ids = node_ids()
    assert len(ids) >= 13, ids
    targets = {target.split("#")[0] for _, target in links(README)}
    text = README.read_text(encoding="utf-8")
    missing = [i for i in ids if f"web/docs/{i}.md" not in targets or f"`{i}`" not in text]
    assert not missing, f"README.md's node table lacks a row linking web/docs/<NodeId>.md for: {missing}"


def test_every_bundled_workflow_is_linked_from_the_readme():
    targets = {target.split("#")[0] for _, target in links(README)}
    missing = [p.name for p in sorted((ROOT / "workflows").glob("*.json")) if f"workflows/{p.name}" not in targets]
    assert not missing, f"README.md's workflow list lacks: {missing}"


def test_node_texts_name_docs_pages_that_exist():
    """Tooltips and descriptions (every locale) point at the docs/ page holding the detail, never at the README,
    whose measurement detail moved to docs/."""
    bad = []
    for path in sorted((ROOT / "locales").glob("*/nodeDefs.json")):
        text = path.read_text(encoding="utf-8")
        lang = path.parent.name
        bad += [f"{lang}: docs/{name}" for name in re.findall(r"docs/([A-Za-z0-9_./-]+?\.md)", text)
                if not (ROOT / "docs" / name).is_file()]
        bad += [f"{lang}: mentions the README" for _ in re.findall(r"README", text)]
    assert not bad, bad
