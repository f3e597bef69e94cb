"""Locales: English is generated from the node schemas (tools/locales.py); ja, zh and ko translate all of it.

The locales are read through ComfyUI's own loader (`CustomNodeManager.build_translations`, what /i18n
serves to the frontend), the schemas through ComfyUI's V3 node API.
"""
import copy
import json

import pytest

from tools import locales

TRANSLATIONS = ("ja", "zh", "ko")
ENTRY_KEYS = {"display_name", "description", "inputs", "outputs"}
TEXT_KEYS = {"name", "tooltip"}


@pytest.fixture(scope="module")
def english(comfy_host) -> dict:
    """The English locale the schemas give now."""
    return locales.english_locale(comfy_host.nodes)


@pytest.fixture(scope="module")
def served(comfy_host) -> dict:
    """Every language's nodeDefs as ComfyUI loads them from the custom_nodes folders for /i18n."""
    from app.custom_node_manager import CustomNodeManager
    return {lang: tables.get("nodeDefs", {}) for lang, tables in CustomNodeManager().build_translations().items()}


def committed(language: str) -> dict:
    return json.loads(locales.locale_path(language).read_text(encoding="utf-8"))


def text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def problems(translation: dict, english: dict) -> list[str]:
    """What a locale lacks or has too much against the English one: nodes, inputs, outputs, texts."""
    found = [f"stale node {n}" for n in translation.keys() - english.keys()]
    for node_id, reference in english.items():
        entry = translation.get(node_id)
        if not isinstance(entry, dict):
            found.append(f"{node_id}: missing")
            continue
        found += [f"{node_id}: stale key {k}" for k in entry.keys() - ENTRY_KEYS]
        found += [f"{node_id}: empty {k}" for k in ("display_name", "description") if not text(entry.get(k))]
        for part in ("inputs", "outputs"):
            have, want = entry.get(part) or {}, reference[part]
            found += [f"{node_id}: {part} lacks {k}" for k in want.keys() - have.keys()]
            found += [f"{node_id}: stale {part[:-1]} {k}" for k in have.keys() - want.keys()]
            for key in want.keys() & have.keys():
                found += [f"{node_id}: stale key {part}.{key}.{k}" for k in have[key].keys() - TEXT_KEYS]
                found += [f"{node_id}: empty {part}.{key}.{k}" for k in TEXT_KEYS if not text(have[key].get(k))]
    return found


def test_english_locale_is_what_the_node_schemas_give(english):
    stale = sorted(n for n in english.keys() | committed("en").keys() if english.get(n) != committed("en").get(n))
    assert not stale, f"locales/en/nodeDefs.json is stale for {stale}: run `python3 -m tools locales`"


def test_generator_reads_every_node_and_text_the_v3_schemas_declare(comfy_host, english):
    # A second path to the same texts: the V3 Schema objects themselves, not ComfyUI's /object_info form.
    classes = comfy_host.pack_module("nodes").NODES
    assert list(english) == [cls.GET_SCHEMA().node_id for cls in classes] and len(classes) >= 10
    for cls in classes:
        schema, entry = cls.GET_SCHEMA(), english[cls.GET_SCHEMA().node_id]
        assert (entry["display_name"], entry["description"]) == (schema.display_name, schema.description)
        assert {k: v["tooltip"] for k, v in entry["inputs"].items()} == {i.id: i.tooltip for i in schema.inputs}
        assert [v["tooltip"] for v in entry["outputs"].values()] == [o.tooltip for o in schema.outputs]


def test_every_node_input_and_output_has_an_english_text(english):
    """The product contract: every input and output has a tooltip, every node a description."""
    assert problems(english, english) == []


@pytest.mark.parametrize("language", TRANSLATIONS)
def test_translation_covers_every_node_input_and_output_with_no_stale_keys(language, english, served):
    assert problems(committed(language), english) == [], f"locales/{language}/nodeDefs.json"
    ours = {n: served[language][n] for n in english if n in served.get(language, {})}
    assert ours == committed(language), f"ComfyUI does not serve locales/{language} as written"
    untranslated = [n for n in english if committed(language)[n]["description"] == english[n]["description"]]
    assert not untranslated, f"{language}: descriptions still in English: {untranslated}"


def test_completeness_check_finds_each_kind_of_gap(english):
    # The check above must be able to fail: break a copy of a good translation in every way it looks for.
    good = committed("ja")
    node = next(n for n in english if english[n]["inputs"] and english[n]["outputs"])
    first_input = next(iter(english[node]["inputs"]))
    broken = copy.deepcopy(good)
    del broken[node]["inputs"][first_input]
    broken[node]["outputs"]["0"]["tooltip"] = " "
    broken[node]["inputs"]["no_such_input"] = {"name": "x", "tooltip": "y"}
    broken[node]["outputs"]["99"] = {"name": "x", "tooltip": "y"}
    broken["SNRTNoSuchNode"] = good[node]
    other = next(n for n in english if n != node)
    del broken[other]
    found = problems(broken, english)
    for expected in (f"{node}: inputs lacks {first_input}", f"{node}: empty outputs.0.tooltip",
                     f"{node}: stale input no_such_input", f"{node}: stale output 99", "stale node SNRTNoSuchNode",
                     f"{other}: missing"):
        assert expected in found, (expected, found)
