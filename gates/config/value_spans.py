"""Where each scalar value sits in a JSON or YAML text, so one value can be replaced in place.

:func:`yaml_scalar_spans` and :func:`json_string_spans` map key paths to ``(start, end)``
offsets of their values; :mod:`sftgate.gates.config.fix_model_ids` replaces those spans and
nothing else. A YAML anchor (``&base``) or tag before a value is not part of its span, so a fix
keeps it; an alias (``*base``) has no span of its own: it reads the anchored value, which is
rewritten once (:attr:`YamlSpans.aliases` lists the paths that are aliases).
"""

from __future__ import annotations

import json
import re
from typing import Any

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers.document import KeyPath

_WS = re.compile(r"[ \t\n\r]*")
_PROPERTY = re.compile(r"(?:[&!][^\s]*\s+)+")  # anchors and tags in front of a scalar


def yaml_scalar_spans(text: str, shown: str = "<yaml>") -> dict[KeyPath, tuple[int, int, str | None]]:
    """``key path -> (start, end, style)`` of every scalar value that can be rewritten in place
    (plain, single- or double-quoted; block scalars are left out)."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise InputError(f"{shown}: invalid YAML: {exc}".splitlines()[0]) from None
    spans: dict[KeyPath, tuple[int, int, str | None]] = {}
    seen: set[int] = set()  # an alias is the same node object as its anchor

    def walk(node: Any, path: KeyPath) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                walk(value_node, (*path, str(getattr(key_node, "value", key_node))))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))
        elif isinstance(node, yaml.ScalarNode) and node.style in (None, "'", '"'):
            start = node.start_mark.index
            prop = _PROPERTY.match(text, start)
            if prop is not None and text[start] in "&!":
                start = prop.end()  # keep `&base ` / `!!str ` in front of the value
            spans[path] = (start, node.end_mark.index, node.style)

    if root is not None:
        walk(root, ())
    return spans


_WS = re.compile(r"[ \t\n\r]*")


def json_string_spans(text: str) -> dict[KeyPath, tuple[int, int]]:
    """``key path -> (start, end)`` of every string value in a JSON document (quotes included).

    A tiny recursive-descent walk over the text with the stdlib decoder for scalars, so that
    positions are exact; raises ValueError on anything that is not JSON.
    """
    decoder = json.JSONDecoder()
    spans: dict[KeyPath, tuple[int, int]] = {}

    def skip(i: int) -> int:
        match = _WS.match(text, i)
        return match.end() if match else i

    def value(i: int, path: KeyPath, depth: int) -> int:
        if depth > 200:
            raise ValueError("nested too deeply")
        i = skip(i)
        if i >= len(text):
            raise ValueError("unexpected end")
        ch = text[i]
        if ch == "{":
            i = skip(i + 1)
            if text[i : i + 1] == "}":
                return i + 1
            while True:
                if text[i : i + 1] != '"':
                    raise ValueError(f"expected a key at {i}")
                key, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
                i = skip(i)
                if text[i : i + 1] != ":":
                    raise ValueError(f"expected ':' at {i}")
                i = skip(value(i + 1, (*path, key), depth + 1))
                if text[i : i + 1] == ",":
                    i = skip(i + 1)
                    continue
                if text[i : i + 1] == "}":
                    return i + 1
                raise ValueError(f"expected ',' or '}}' at {i}")
        if ch == "[":
            i = skip(i + 1)
            if text[i : i + 1] == "]":
                return i + 1
            index = 0
            while True:
                i = skip(value(i, (*path, index), depth + 1))
                index += 1
                if text[i : i + 1] == ",":
                    i += 1
                    continue
                if text[i : i + 1] == "]":
                    return i + 1
                raise ValueError(f"expected ',' or ']' at {i}")
        obj, end = decoder.raw_decode(text, i)
        if isinstance(obj, str):
            spans[path] = (i, end)
        return int(end)

    end = skip(value(0, (), 0))
    if end != len(text):
        raise ValueError("trailing text")
    return spans


