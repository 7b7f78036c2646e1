"""Load a JSON or YAML file into plain data plus the line of every key path.

Locations in findings read ``FILE:key.path``; GitHub annotations also need the line, which the
YAML composer knows. JSON is read by the same composer (JSON is YAML), falling back to ``json``
with no lines for the rare JSON that PyYAML rejects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers import textfile

KeyPath = tuple[str | int, ...]


def dotted(path: KeyPath) -> str:
    """``("model", "name")`` -> ``model.name``; list indexes read ``items[2]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "<root>"


@dataclass
class Document:
    path: Path
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    is_json: bool = False

    def line_of(self, key_path: KeyPath) -> int | None:
        """The line of ``key_path``, or of its nearest ancestor that has one."""
        path = tuple(key_path)
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path)

    def location(self, key_path: KeyPath) -> str:
        return f"{self.path}:{dotted(key_path)}"


def load(path: str | Path, *, display: str | None = None) -> Document:
    """Read ``path`` (JSON or YAML). Missing, unreadable or malformed files raise InputError."""
    p = Path(path)
    shown = display or str(path)
    text = textfile.read_text(p, display=shown, expected="a JSON or YAML file")
    return loads(text, Path(shown), is_json=p.suffix.lower() == ".json")


def loads(text: str, path: Path, *, is_json: bool = False) -> Document:
    import yaml

    try:
        node = yaml.compose(text, Loader=_line_loader())
    except yaml.YAMLError as exc:
        if is_json:
            return _loads_json(text, path)
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{where}: invalid YAML: {problem}", hint="fix the syntax at that line") from None
    if node is None:
        return Document(path=path, data=None, is_json=is_json)
    lines: dict[KeyPath, int] = {}
    data = _construct(node, (), lines)
    return Document(path=path, data=data, lines=lines, is_json=is_json)


def _loads_json(text: str, path: Path) -> Document:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    return Document(path=path, data=data, is_json=True)


@cache
def _line_loader() -> type:
    """A safe loader (C-accelerated when available) that also reads ``1e-4`` as a float, as
    YAML 1.2 and every user expects. Built on first use so importing this module stays cheap."""
    import re

    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader: Any = type("_LineLoader", (base,), {})
    # Copy the resolver table first: add_implicit_resolver would otherwise mutate SafeLoader's lists.
    loader.yaml_implicit_resolvers = {k: list(v) for k, v in base.yaml_implicit_resolvers.items()}
    loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
    return loader


def _construct(node: Any, path: KeyPath, lines: dict[KeyPath, int]) -> Any:
    import yaml

    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            key_path = (*path, str(key))
            lines[key_path] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, key_path, lines)
            lines[key_path] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: Any) -> Any:
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        return _construct(node, (), {})
    loader = _line_loader()("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
