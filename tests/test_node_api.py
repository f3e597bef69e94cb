"""The V3 node API as each host has it: expert inputs fold behind "advanced" where the host knows the flag
(ComfyUI 0.33 does, as its own SkipLayerGuidanceSD3 does for layers and percents), search aliases where the
host has them, and the same nodes and inputs on 0.3.75, which has neither."""
import dataclasses
import inspect

import pytest

ADVANCED = {
    "SNRTSkipLayerGuidance": {"layers", "scale", "start", "end", "gating", "fast_path", "single_layers", "mode"},
    "SNRTScheduler": {"sigma_hi_base"},
    "SNRTSigmaMaxScale": {"base_side", "steps"},
    "SNRTRescaleCFG": {"start_percent", "end_percent"},
}


@pytest.fixture(scope="module")
def object_info(live_server):
    return live_server.get_json("/object_info")


@pytest.fixture(scope="module")
def host_io(comfy_host):
    from comfy_api.latest import io
    return io


def test_the_pack_detects_what_this_host_accepts(comfy_host, host_io):
    schema = comfy_host.pack_module("nodes.schema")
    assert schema.HOST_HAS_ADVANCED_INPUTS == ("advanced" in inspect.signature(host_io.Float.Input).parameters)
    assert schema.HOST_HAS_SEARCH_ALIASES == any(f.name == "search_aliases" for f in dataclasses.fields(host_io.Schema))


@pytest.mark.parametrize("node_id", sorted(ADVANCED))
def test_expert_inputs_are_advanced_exactly_where_the_host_supports_it(comfy_host, host_io, object_info, node_id):
    supported = "advanced" in inspect.signature(host_io.Float.Input).parameters
    info = object_info[node_id]["input"]
    inputs = {**info.get("required", {}), **info.get("optional", {})}
    flagged = {name for name, spec in inputs.items() if len(spec) > 1 and spec[1].get("advanced")}
    assert flagged == (ADVANCED[node_id] if supported else set()), flagged
    # Folding changes nothing else: every input is still served, in the schema's order.
    schema = comfy_host.node(node_id).define_schema()
    assert list(inputs) == [i.id for i in schema.inputs if not i.optional] + [i.id for i in schema.inputs if i.optional]


def test_search_aliases_are_served_where_the_host_has_them(comfy_host, host_io, object_info):
    supported = any(f.name == "search_aliases" for f in dataclasses.fields(host_io.Schema))
    aliases = object_info["SNRTSkipLayerGuidance"].get("search_aliases")
    assert (aliases is not None and "slg" in aliases) == supported, aliases
