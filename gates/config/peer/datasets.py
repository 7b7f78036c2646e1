"""A peer tool's dataset, in sftgate's formats, with every finding still pointing at the user's file.

A dataset that is already ``{"prompt", "completion"}`` or ``{"messages": [...]}`` is checked as
it is. Any other documented format is converted record by record into a temporary JSONL file
with one line per record of the original, so line N of the copy is line N (or element N, or
row N) of the original: axolotl's ``alpaca``-style types and ``chat_template``/``sharegpt`` with
their field mappings, LLaMA-Factory's ``alpaca`` and ``sharegpt`` formatting with its
``columns`` and ``tags``. :func:`relocate` rewrites the copy's path back to the original's in
every finding, and a field the mapping names but a record lacks is reported under its own name
(``output is missing``), not under the sftgate field it maps to.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding

# What each conversion produces: the sftgate field a mapped field becomes.
PRODUCES = {"prompt_completion": ("prompt", "completion"), "conversation": ("messages",),
            "alpaca_messages": ("messages",)}


@dataclass
class Converted:
    """A dataset ready for the gates: the file to read, how to show it, and the mapping's own problems."""

    path: Path
    display: str
    original: Path
    line_based: bool = True  # locations are file lines (JSONL); else element or row numbers
    converted: bool = False
    missing: dict[int, str] = field(default_factory=dict)  # line -> the mapped field the record lacks
    mapping_note: str = ""

    @property
    def temporary(self) -> str | None:
        return str(self.path) if self.converted else None


def _iter_records(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """``(line, value, raw line)``: raw JSONL lines are kept so invalid lines are copied as they are."""
    from sftgate.gates.readers.dataset_io import open_dataset
    from sftgate.gates.readers.jsonl_reader import ReadIssue

    source = open_dataset(path)
    if source.kind != "jsonl":
        for line, value in source:
            yield line, value, None
        return
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if number == 1:
                text = text.lstrip("\ufeff")
            if not text.strip():
                yield number, None, ""
                continue
            try:
                yield number, json.loads(text), text
            except ValueError:
                yield number, ReadIssue, text  # a marker: copy the raw line


def convert(original: Path, display: str, mapping: Mapping[str, Any], folder: Path, index: int) -> Converted:
    """Write ``original`` converted by ``mapping`` into ``folder``; one output line per input record."""
    target = folder / f"dataset-{index}.jsonl"
    result = Converted(target, display, original, converted=True, mapping_note=describe(mapping))
    kind = None
    with open(target, "w", encoding="utf-8") as out:
        for line, value, raw in _iter_records(original):
            kind = kind or ("jsonl" if raw is not None else "rows")
            if raw is not None and (not isinstance(value, dict) or raw == ""):
                out.write(raw + "\n")  # blank, invalid or not an object: the gate reports it as it is
                continue
            record, lacks = convert_record(value, mapping)
            if lacks:
                result.missing[line] = lacks
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    result.line_based = kind != "rows"
    return result


def describe(mapping: Mapping[str, Any]) -> str:
    fmt = mapping.get("format")
    if fmt == "prompt_completion":
        return f"prompt = {' + '.join(mapping.get('prompt', []))}, completion = {mapping.get('completion')}"
    if fmt == "alpaca_messages":
        return f"user = {mapping.get('prompt')} + {mapping.get('query')}, assistant = {mapping.get('response')}"
    return f"messages = {mapping.get('messages')} ({mapping.get('role')}/{mapping.get('content')})"


def convert_record(obj: Any, mapping: Mapping[str, Any]) -> tuple[Any, str | None]:
    """One record in sftgate's format, and the first mapped field it lacks (or None)."""
    if not isinstance(obj, dict):
        return obj, None
    fmt = mapping.get("format")
    if fmt == "prompt_completion":
        return _prompt_completion(obj, mapping)
    if fmt == "alpaca_messages":
        return _alpaca_messages(obj, mapping)
    return _conversation(obj, mapping)


def _prompt_completion(obj: dict[str, Any], mapping: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    fields = list(mapping.get("prompt", []))
    out: dict[str, Any] = {}
    lacks = None
    if fields and fields[0] in obj:
        parts = [obj[f] for f in fields if f in obj and obj[f] not in (None, "")]
        out["prompt"] = "\n\n".join(p if isinstance(p, str) else json.dumps(p) for p in parts) if all(
            isinstance(p, str) for p in parts) else obj[fields[0]]
    elif fields:
        lacks = fields[0]
    completion = mapping.get("completion")
    if completion in obj:
        out["completion"] = obj[completion]
    elif lacks is None:
        lacks = completion
    return out, lacks


def _role(value: Any, roles: Mapping[str, list[str]]) -> Any:
    if not isinstance(value, str):
        return value
    for canonical, aliases in roles.items():
        if value in aliases or value == canonical:
            return canonical
    return value


def _conversation(obj: dict[str, Any], mapping: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    key = mapping.get("messages", "messages")
    if key not in obj:
        return {"messages": []}, key
    turns = obj[key]
    if not isinstance(turns, list):
        return {"messages": turns}, None
    role_key, content_key = mapping.get("role", "role"), mapping.get("content", "content")
    roles = mapping.get("roles") or {}
    messages: list[Any] = []
    system = mapping.get("system")
    if system and isinstance(obj.get(system), str) and obj[system]:
        messages.append({"role": "system", "content": obj[system]})
    for turn in turns:
        if not isinstance(turn, dict):
            messages.append(turn)
            continue
        message = {k: v for k, v in turn.items() if k not in (role_key, content_key)}
        if role_key in turn:
            message["role"] = _role(turn[role_key], roles)
        if content_key in turn:
            message["content"] = turn[content_key]
        if message.get("role") == "function_call":  # LLaMA-Factory: an assistant tool call
            message = {"role": "assistant", "content": None,
                       "tool_calls": [{"type": "function", "function": message.get("content")}]}
        messages.append(message)
    return {"messages": messages}, None


def _alpaca_messages(obj: dict[str, Any], mapping: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    prompt, query, response = mapping.get("prompt"), mapping.get("query"), mapping.get("response")
    if prompt not in obj:
        return {"messages": []}, prompt
    if response not in obj:
        return {"messages": []}, response
    messages: list[dict[str, Any]] = []
    system = mapping.get("system")
    if system and isinstance(obj.get(system), str) and obj[system]:
        messages.append({"role": "system", "content": obj[system]})
    history = obj.get(mapping.get("history") or "")
    for pair in history if isinstance(history, list) else []:
        if isinstance(pair, list) and len(pair) == 2:
            messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    user = obj[prompt]
    if query and isinstance(obj.get(query), str) and obj[query] and isinstance(user, str):
        user = f"{user}\n{obj[query]}"
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": obj[response]}]
    return {"messages": messages}, None


# --------------------------------------------------------------------------- findings back to the original


def _swap(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_swap(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _swap(v, old, new) for k, v in value.items()}
    return value


def relocate(findings: Iterator[Finding], datasets: list[Converted], tool_label: str) -> Iterator[Finding]:
    """``findings`` with every converted copy's path replaced by its original's, and the records
    that lack a mapped field reported once, under that field's own name."""
    from sftgate.gates.data.dataset_schema_rules import R

    converted = [d for d in datasets if d.converted]
    reported: set[tuple[str, int]] = set()
    for f in findings:
        source = next((d for d in converted if f.location.startswith(str(d.path))), None)
        line = f.file_line
        if source is not None and line is not None and line in source.missing and f.rule in (
                "missing_field", "empty_field", "unknown_format"):
            if (source.display, line) not in reported:
                reported.add((source.display, line))
                lacks = source.missing[line]
                yield R["missing_field"].finding(
                    f"{lacks} is missing ({tool_label}: {source.mapping_note})", f"{source.display}:{line}",
                    evidence={"field": lacks}, line=line if source.line_based else None)
            continue
        location, message, evidence = f.location, f.message, f.evidence
        for d in converted:
            old = str(d.path)
            if old in location or old in message or old in str(evidence):
                location, message = location.replace(old, d.display), message.replace(old, d.display)
                evidence = _swap(evidence, old, d.display)
        if (location, message, evidence) == (f.location, f.message, f.evidence):
            yield f
            continue
        yield dataclasses.replace(f, location=location, message=message, evidence=evidence,
                                  line=f.line if source is None or source.line_based else None)
