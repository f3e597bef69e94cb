"""One schema for every supported host: what this ComfyUI's V3 node API accepts beyond 0.3.75's.

Newer hosts (0.33) fold inputs marked `advanced=True` behind the node's "advanced" toggle, as
ComfyUI's own SkipLayerGuidanceSD3 does with its layers and percents, and search nodes by
`search_aliases`; 0.3.75 knows neither keyword, so they are passed only where they exist."""
from __future__ import annotations

import dataclasses
import inspect

from comfy_api.latest import io

HOST_HAS_ADVANCED_INPUTS = "advanced" in inspect.signature(io.Float.Input.__init__).parameters
HOST_HAS_SEARCH_ALIASES = "search_aliases" in {field.name for field in dataclasses.fields(io.Schema)}


def advanced() -> dict:
    """Keyword arguments that mark an expert input as advanced where the host supports it."""
    return {"advanced": True} if HOST_HAS_ADVANCED_INPUTS else {}


def schema(search_aliases: list[str] = (), **kwargs) -> io.Schema:
    """io.Schema, with search aliases where the host supports them."""
    if HOST_HAS_SEARCH_ALIASES and search_aliases:
        kwargs["search_aliases"] = list(search_aliases)
    return io.Schema(**kwargs)
