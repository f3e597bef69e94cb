"""The graph editor's workflow format (UI JSON, LiteGraph 0.4): build, validate, convert to API.

Widget values are positional, in the order the node's inputs are declared in /object_info
(required, then optional), with one extra value after every input the frontend gives a second widget:
"fixed" / "randomize" … after control_after_generate (and any INT seed), "image" after Load Image's upload.
Stdlib only.

`build` reads from /object_info only what a workflow relies on and ComfyUI keeps across releases
(widget order, socket names, the types of linked outputs); never defaults, option flags such as
`advanced`, or outputs nothing is linked from, so both hosts (0.3.75 and 0.33) build the same file.
"""
from __future__ import annotations

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
#: Nodes that exist only in the frontend: never sent to the server.
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}


def declared_inputs(info: dict) -> list[tuple[str, list]]:
    return list(info["input"].get("required", {}).items()) + list(info["input"].get("optional", {}).items())


def is_widget(spec: list) -> bool:
    kind = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return (isinstance(kind, list) or kind in WIDGET_TYPES) and not options.get("forceInput")


def widget_slots(info: dict) -> list[tuple[str, list, bool]]:
    """(input name, spec, the value of the extra widget the frontend adds after it or None) for every widget input,
    in widgets_values order."""
    out = []
    for name, spec in declared_inputs(info):
        if is_widget(spec):
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            # The frontend also gives an INT named seed or noise_seed a control widget unasked (Train LoRA's seed),
            # and an image_upload combo (Load Image) an upload button that saves "image".
            if options.get("control_after_generate") or (spec[0] == "INT" and name in ("seed", "noise_seed")):
                out.append((name, spec, "fixed"))
            elif options.get("image_upload"):
                out.append((name, spec, "image"))
            else:
                out.append((name, spec, None))
    return out


def combo_options(spec: list) -> list | None:
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO":
        return spec[1].get("options", [])
    return None


def build(nodes: list[dict], object_info: dict) -> dict:
    """A UI workflow from compact node specs: {"id", "type", "pos", "widgets": {name: value},
    "links": {input: (source id, source output slot)}, optional "title", "size", "text" (notes)}."""
    by_id = {n["id"]: n for n in nodes}
    links, ui_nodes = [], []
    out_links: dict[tuple[int, int], list[int]] = {}
    for node in nodes:
        for name, (source, slot) in node.get("links", {}).items():
            link_id = len(links) + 1
            source_type = object_info[by_id[source]["type"]]["output"][slot]
            links.append([link_id, source, slot, node["id"], None, source_type, name])
            out_links.setdefault((source, slot), []).append(link_id)
    for order, node in enumerate(nodes):
        kind = node["type"]
        ui = {"id": node["id"], "type": kind, "pos": list(node["pos"]), "size": list(node.get("size", [320, 120])),
              "flags": {}, "order": order, "mode": 0, "inputs": [], "outputs": [], "properties": {}}
        if node.get("title"):
            ui["title"] = node["title"]
        if kind in FRONTEND_ONLY:
            ui["widgets_values"] = [node["text"]]
            ui["color"], ui["bgcolor"] = "#432", "#653"
            ui_nodes.append(ui)
            continue
        info = object_info[kind]
        ui["properties"] = {"Node name for S&R": kind}
        sockets = [(name, spec) for name, spec in declared_inputs(info) if not is_widget(spec)]
        for index, (name, spec) in enumerate(sockets):
            link_id = next((l[0] for l in links if l[3] == node["id"] and l[6] == name), None)
            if link_id is None and name in info["input"].get("required", {}):
                raise ValueError(f"node {node['id']} ({kind}): required input {name!r} is not linked")
            if link_id is not None or name in info["input"].get("required", {}):
                ui["inputs"].append({"name": name, "type": spec[0], "link": link_id})
                if link_id is not None:
                    next(l for l in links if l[0] == link_id)[4] = len(ui["inputs"]) - 1
        # A node the workflow takes nothing from (SaveImage, PreviewImage: the graph's ends) is written
        # without outputs: ComfyUI 0.33 gave those two an IMAGE output that 0.3.75 lacks, and the editor
        # adds a node's declared outputs on load (frontends 1.32 and 1.49 both do), so the file is the
        # same whichever host built it.
        if any(source == node["id"] for source, _slot in out_links):
            for slot, (out_type, out_name) in enumerate(zip(info["output"], info["output_name"])):
                ui["outputs"].append({"name": out_name, "type": out_type,
                                      "links": out_links.get((node["id"], slot), []), "slot_index": slot})
        values = []
        for name, _spec, control in widget_slots(info):
            # Every value is the workflow's own: a host's default may change between ComfyUI releases.
            if name not in node.get("widgets", {}):
                raise ValueError(f"node {node['id']} ({kind}): widget {name!r} has no value in the workflow")
            values.append(node["widgets"][name])
            if control:
                values.append(control)
        unknown = set(node.get("widgets", {})) - {name for name, *_ in widget_slots(info)}
        if unknown:
            raise ValueError(f"node {node['id']} ({kind}): no widget input named {sorted(unknown)}")
        ui["widgets_values"] = values
        if "size" not in node:
            rows = max(len(ui["inputs"]), len(ui["outputs"]))
            ui["size"] = [320, ROW_HEIGHT * rows + WIDGET_HEIGHT * len(values) + 16]
        ui_nodes.append(ui)
    stack_columns(ui_nodes)
    return {"last_node_id": max(by_id), "last_link_id": len(links), "nodes": ui_nodes,
            "links": [l[:6] for l in links], "groups": [], "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}},
            "version": 0.4}


ROW_HEIGHT, WIDGET_HEIGHT, TITLE_HEIGHT, GAP = 20, 24, 30, 24


def stack_columns(ui_nodes: list[dict]) -> None:
    """Push nodes down within each column (same x) so none is drawn over the one above it."""
    columns: dict[float, list[dict]] = {}
    for ui in ui_nodes:
        columns.setdefault(ui["pos"][0], []).append(ui)
    for column in columns.values():
        column.sort(key=lambda ui: ui["pos"][1])
        for above, below in zip(column, column[1:]):
            below["pos"][1] = max(below["pos"][1], above["pos"][1] + above["size"][1] + TITLE_HEIGHT + GAP)


def node_label(node: dict) -> str:
    return f"node {node['id']} ({node['type']}{', ' + repr(node['title']) if node.get('title') else ''})"


def widget_values(node: dict, info: dict) -> dict:
    """{input name: value} from a UI node's positional widgets_values."""
    values, position = {}, 0
    raw = node.get("widgets_values", [])
    for name, _spec, control in widget_slots(info):
        if position < len(raw):
            values[name] = raw[position]
        position += 2 if control else 1
    return values


def validate(workflow: dict, object_info: dict) -> list[str]:
    """Problems with a UI workflow against a server's /object_info; each names the node and the input."""
    problems = []
    nodes = {n["id"]: n for n in workflow["nodes"]}
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_ONLY:
            continue
        info = object_info.get(node["type"])
        if info is None:
            problems.append(f"{node_label(node)}: unknown node type {node['type']!r} (missing custom node?)")
            continue
        slots = widget_slots(info)
        expected = len(slots) + sum(1 for *_, control in slots if control)
        if len(node.get("widgets_values", [])) != expected:
            problems.append(f"{node_label(node)}: {len(node.get('widgets_values', []))} widget values, expected "
                            f"{expected} for inputs {[s[0] for s in slots]}")
        for name, value in widget_values(node, info).items():
            spec = dict(declared_inputs(info))[name]
            problem = widget_problem(spec, value)
            if problem:
                problems.append(f"{node_label(node)}, input {name!r}: {problem}")
        linked = {i["name"] for i in node.get("inputs", []) if i.get("link") is not None}
        for name in info["input"].get("required", {}):
            if not is_widget(info["input"]["required"][name]) and name not in linked:
                problems.append(f"{node_label(node)}, input {name!r}: required input is not connected")
    for link_id, source, slot, target, target_slot, link_type in workflow["links"]:
        if source not in nodes or target not in nodes:
            problems.append(f"link {link_id}: joins a node that does not exist ({source} → {target})")
            continue
        source_node, target_node = nodes[source], nodes[target]
        if source_node["type"] in FRONTEND_ONLY or target_node["type"] in FRONTEND_ONLY:
            continue
        source_info, target_info = object_info.get(source_node["type"]), object_info.get(target_node["type"])
        if source_info is None or target_info is None:
            continue
        out_type = source_info["output"][slot] if slot < len(source_info["output"]) else None
        target_input = target_node["inputs"][target_slot]
        spec = dict(declared_inputs(target_info)).get(target_input["name"])
        in_type = spec[0] if spec else None
        if spec is None:
            problems.append(f"{node_label(target_node)}, input {target_input['name']!r}: no such input")
        elif not types_match(out_type, in_type) or link_type != out_type:
            problems.append(f"{node_label(target_node)}, input {target_input['name']!r}: link {link_id} brings "
                            f"{out_type} from {node_label(source_node)} but the input takes {in_type}")
    return problems


def types_match(out_type, in_type) -> bool:
    if in_type == "*" or out_type == "*":
        return True
    outs, ins = set(str(out_type).split(",")), set(str(in_type).split(","))
    return bool(outs & ins)


def widget_problem(spec: list, value) -> str | None:
    options = combo_options(spec)
    if options is not None:
        return None if value in options else f"{value!r} is not one of the options ({len(options)} offered)"
    kind = spec[0]
    limits = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if kind in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == "INT" and value != int(value)):
            return f"{value!r} is not a{'n integer' if kind == 'INT' else ' number'}"
        if "min" in limits and value < limits["min"]:
            return f"{value} is below the minimum {limits['min']}"
        if "max" in limits and value > limits["max"]:
            return f"{value} is above the maximum {limits['max']}"
    if kind == "BOOLEAN" and not isinstance(value, bool):
        return f"{value!r} is not true/false"
    if kind == "STRING" and not isinstance(value, str):
        return f"{value!r} is not text"
    return None


def to_api(workflow: dict, object_info: dict) -> dict:
    """The API-format prompt the frontend would queue for this UI workflow."""
    prompt = {}
    links = {l[0]: l for l in workflow["links"]}
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_ONLY or node.get("mode", 0) != 0:
            continue
        info = object_info[node["type"]]
        inputs = dict(widget_values(node, info))
        for socket in node.get("inputs", []):
            if socket.get("link") is not None:
                link = links[socket["link"]]
                inputs[socket["name"]] = [str(link[1]), link[2]]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt
