"""The key tables of the peer trainers, loaded from the package data (``gates/schemas/peer/``).

``<tool>.keys.json`` lists every documented option with its JSON types (generated from the
tool's own config reference; it names the tool version). ``tools.json`` is hand-written: the
model-ID keys, the keys that need each other, dataset types, what marks a file as not a job
config. Nothing here imports the tools themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

TOOLS: tuple[str, ...] = ("axolotl", "llamafactory", "trl", "mistral-finetune")
JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "array", "object", "null", "any"})


@dataclass(frozen=True)
class KeySpec:
    """One documented option: its JSON types, allowed values, and nested table if any."""

    name: str
    types: frozenset[str]
    enum: tuple[Any, ...] = ()
    patterns: tuple[str, ...] = ()
    section: str | None = None  # an object validated against this section
    items: str | None = None  # an array of objects validated against this section
    plugin: str | None = None  # axolotl: the plugin that adds this option
    deprecated: bool = False
    alias_of: str | None = None

    @classmethod
    def from_json(cls, name: str, raw: dict[str, Any]) -> KeySpec:
        values = raw.get("enum") or ()
        section = raw.get("section")
        items = raw.get("items")
        return cls(
            name=name,
            types=frozenset(raw.get("type") or ("any",)),
            enum=tuple(v for v in values if not isinstance(v, dict)),
            patterns=tuple(v["pattern"] for v in values if isinstance(v, dict) and "pattern" in v),
            section=section[0] if isinstance(section, list) else section,
            items=items[0] if isinstance(items, list) else items,
            plugin=raw.get("plugin"),
            deprecated=bool(raw.get("deprecated")),
            alias_of=raw.get("alias_of"),
        )


@dataclass(frozen=True)
class KeyTable:
    """Every option of one tool, the nested sections, and the hand-written data about it."""

    tool: str
    label: str
    version: str
    source: str
    keys: dict[str, KeySpec]
    sections: dict[str, dict[str, KeySpec]]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def described(self) -> str:
        """``axolotl v0.18.0-9-g067b021c8 (067b021c8b87)``: the table's tool and version."""
        return f"{self.label} {self.version}"

    def section(self, name: str | None) -> dict[str, KeySpec] | None:
        return self.sections.get(name) if name else None


def _data(name: str) -> Any:
    text = resources.files("sftgate.gates").joinpath(f"schemas/peer/{name}").read_text("utf-8")
    return json.loads(text)


@cache
def tools_info() -> dict[str, Any]:
    """The hand-written ``tools.json``."""
    return _data("tools.json")  # type: ignore[no-any-return]


def _specs(raw: dict[str, Any]) -> dict[str, KeySpec]:
    return {name: KeySpec.from_json(name, spec) for name, spec in raw.items()}


@cache
def table(tool: str) -> KeyTable:
    """The key table of ``tool`` (one of :data:`TOOLS`); KeyError for any other name."""
    if tool not in TOOLS:
        raise KeyError(tool)
    raw = _data(f"{tool}.keys.json")
    info = tools_info().get(tool, {})
    sections = {name: _specs(keys) for name, keys in raw.get("sections", {}).items()}
    for name, keys in info.items():  # hand-written sections (LLaMA-Factory's dataset_info.json)
        if name.startswith("dataset_info") and isinstance(keys, dict):
            sections[name] = _specs(keys)
    return KeyTable(
        tool=tool,
        label=info.get("label", tool),
        version=raw.get("version", "?"),
        source=raw.get("source", ""),
        keys=_specs(raw["keys"]),
        sections=sections,
        info=info,
    )


@cache
def distinctive_keys() -> dict[str, frozenset[str]]:
    """Per tool, its top-level keys that no other tool's table has (plugin options do not count)."""
    all_keys = {tool: frozenset(k for k, spec in table(tool).keys.items() if spec.plugin is None) for tool in TOOLS}
    out = {}
    for tool, keys in all_keys.items():
        others = frozenset().union(*(k for t, k in all_keys.items() if t != tool))
        out[tool] = keys - others
    return out
