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
    except RecursionError:
        raise _too_deep(path, None) from None
    if node is None:
        return Document(path=path, data=None, is_json=is_json)
    lines: dict[KeyPath, int] = {}
    data = _Builder(path).build(node, lines)
    return Document(path=path, data=data, lines=lines, is_json=is_json)


def _loads_json(text: str, path: Path) -> Document:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise _too_deep(path, None) from None
    except ValueError as exc:  # an integer beyond Python's 4300-digit limit
        raise InputError(f"{path}: invalid JSON: {exc}", hint="write such a number as a string") from None
    return Document(path=path, data=data, is_json=True)


def _too_deep(path: Path, line: int | None) -> InputError:
    where = f"{path}:{line}" if line else str(path)
    return InputError(f"{where}: nested more than {MAX_NESTING} levels deep",
                      hint="no config, schema or manifest needs such nesting; flatten it")


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


MAX_NESTING = 100  # levels of mappings and lists in one document
MAX_ALIAS_VALUES = 100_000  # values that aliases may add, all together (a "billion laughs" stops here)


class _Builder:
    """Plain data from a composed YAML node, with the line of every key path.

    Safe on hostile YAML: an alias is built once and shared (as PyYAML does), the values that
    aliases add are counted against :data:`MAX_ALIAS_VALUES`, an alias inside itself and nesting
    over :data:`MAX_NESTING` are errors; merge keys (``<<: *base``) are applied; a key is a
    scalar, kept as its text when YAML reads it as something else (``1:``, ``~:``, ``yes:``);
    a scalar that its tag cannot build (``!!int abc``) is an error naming the line.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.built: dict[int, tuple[Any, int]] = {}  # id(node) -> (value, values in it)
        self.open: set[int] = set()  # nodes being built (an alias to one is recursive)
        self.alias_values = 0
        self._loader: Any = None

    def build(self, node: Any, lines: dict[KeyPath, int]) -> Any:
        try:
            return self._node(node, (), lines, 0)[0]
        finally:
            if self._loader is not None:
                self._loader.dispose()

    def _error(self, node: Any, message: str, hint: str | None = None) -> InputError:
        return InputError(f"{self.path}:{node.start_mark.line + 1}: {message}", hint=hint)

    def _node(self, node: Any, path: KeyPath, lines: dict[KeyPath, int] | None, depth: int) -> tuple[Any, int]:
        import yaml

        if lines is not None:
            lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node), 1
        key = id(node)
        if key in self.built:  # an alias: shared, and its size counted against the budget
            value, size = self.built[key]
            self.alias_values += size
            if self.alias_values > MAX_ALIAS_VALUES:
                raise self._error(node, f"aliases expand to more than {MAX_ALIAS_VALUES} values",
                                  hint="a YAML alias bomb? write the values out, or use fewer nested aliases")
            return value, size
        if key in self.open:
            raise self._error(node, "an alias used inside its own anchor (a recursive alias)",
                              hint="an anchor (&name) cannot contain *name")
        if depth >= MAX_NESTING:
            raise _too_deep(self.path, node.start_mark.line + 1)
        self.open.add(key)
        try:
            value, size = (self._mapping(node, path, lines, depth) if isinstance(node, yaml.MappingNode)
                           else self._sequence(node, path, lines, depth))
        finally:
            self.open.discard(key)
        self.built[key] = (value, size)
        return value, size

    def _sequence(self, node: Any, path: KeyPath, lines: dict[KeyPath, int] | None, depth: int) -> tuple[Any, int]:
        out, size = [], 1
        for i, item in enumerate(node.value):
            value, n = self._node(item, (*path, i), lines, depth + 1)
            out.append(value)
            size += n
        return out, size

    def _mapping(self, node: Any, path: KeyPath, lines: dict[KeyPath, int] | None, depth: int) -> tuple[Any, int]:
        import yaml

        self._merge(node)
        out: dict[str, Any] = {}
        size = 1
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._error(key_node, "a key must be a plain value, not a list or mapping",
                                  hint="use a string key")
            key = self._key(key_node)
            key_path = (*path, key)
            if lines is not None:
                lines[key_path] = key_node.start_mark.line + 1
            value, n = self._node(value_node, key_path, lines, depth + 1)
            if lines is not None:
                lines[key_path] = key_node.start_mark.line + 1
            out[key] = value
            size += n
        return out, size

    def _merge(self, node: Any) -> None:
        """Apply ``<<`` merge keys (YAML's merge type) the way PyYAML does, or say why not."""
        import yaml

        if not any(k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value):
            return
        try:
            self.loader.flatten_mapping(node)
        except yaml.YAMLError as exc:
            raise self._error(node, f"bad merge key (<<): {getattr(exc, 'problem', None) or exc}",
                              hint="<< takes a mapping or a list of mappings, e.g. <<: *base") from None

    def _key(self, node: Any) -> str:
        value = self._scalar(node)
        return value if isinstance(value, str) else str(node.value)

    @property
    def loader(self) -> Any:
        if self._loader is None:
            self._loader = _line_loader()("")
        return self._loader

    def _scalar(self, node: Any) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except Exception as exc:  # !!int abc, !!binary with bad base64, an unknown !tag, 5000 digits
            problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
            raise self._error(node, f"cannot read the value {node.value[:60]!r} as {node.tag}: {problem}",
                              hint="quote it to keep it a string, or fix the tag") from None
