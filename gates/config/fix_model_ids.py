"""Rewrite model IDs in config files: the migration the postmortem asked for.

For every model-ID field (:mod:`sftgate.gates.config.model_id_fields`) whose value has a *confident*
suggestion (:attr:`sftgate.gates.config.model_id_diagnosis.Diagnosis.confident`: a known organisation, the local HF cache,
a URL, a cache-folder name, stripped whitespace...), the value is replaced in place, and
nothing else in the file changes: the edit is a span replacement at the value's exact position,
so JSON keeps its key order and indentation and YAML keeps its comments, quoting style, line
endings and a BOM. Guesses (a model-family prefix, the uppercase heuristic) are reported, never
applied.

:func:`plan` computes the fixes and the diff; :func:`write` applies them atomically and keeps a
``.bak`` copy of the original.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftgate.gates.config import hub_id_grammar, model_id_diagnosis, model_id_fields, model_id_rules
from sftgate.gates.frame.core import Finding, InputError, Rule, Severity
from sftgate.gates.frame.escape import visible, visible_lines
from sftgate.gates.readers import atomic, document, hf_cache, textfile
from sftgate.gates.readers import config as config_mod
from sftgate.gates.readers.document import KeyPath, dotted

_BOM = "\ufeff"
_PLAIN_SAFE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9._/-]*\Z")


@dataclass(frozen=True)
class Edit:
    """One value to replace: where, the old and new value, and the rule behind it."""

    key_path: KeyPath
    line: int | None
    old: str
    new: str
    rule: Rule
    note: str = ""


@dataclass
class FixPlan:
    path: Path
    display: str
    original: str
    fixed: str
    raw: bytes
    bom: bool
    edits: list[Edit] = field(default_factory=list)
    unfixed: list[Finding] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.fixed != self.original

    def diff(self) -> str:
        """A unified diff of the planned change (empty when nothing changes)."""
        if not self.changed:
            return ""
        old = self.original.split("\n")
        new = self.fixed.split("\n")
        # Lines split on "\n" only, each shown visible: a "\r" or "\x1b" in the file cannot end a
        # line of the diff, move the cursor, or start a workflow command (:mod:`sftgate.gates.frame.escape`).
        old = [visible_lines(x) + "\n" for x in old[:-1]] + ([visible_lines(old[-1])] if old[-1] else [])
        new = [visible_lines(x) + "\n" for x in new[:-1]] + ([visible_lines(new[-1])] if new[-1] else [])
        lines = difflib.unified_diff(old, new, fromfile=f"a/{visible(self.display)}", tofile=f"b/{visible(self.display)}")
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def plan(path: str | Path, *, env: Mapping[str, str] | None = None, display: str | None = None) -> FixPlan:
    """Read ``path`` and work out every confident fix; nothing is written."""
    p = Path(path)
    shown = display or str(path)
    raw = textfile.read_bytes(p, display=shown, expected="a JSON or YAML file")
    text = textfile.decode(raw, display=shown, encoding="utf-8")  # the BOM is kept and handled below
    bom = text.startswith(_BOM)
    if bom:
        text = text[1:]
    is_json = p.suffix.lower() == ".json"
    doc = document.loads(text, Path(shown), is_json=is_json)
    sftgate = config_mod.is_sftgate_config(doc)
    fields = model_id_fields.sftgate_fields(doc.data) if sftgate else model_id_fields.find_id_fields(doc.data)
    cached = hf_cache.cached_model_ids(env=env)
    result = FixPlan(path=p, display=shown, original=text, fixed=text, raw=raw, bom=bom)
    for f in fields:
        _plan_field(result, doc, f, p.parent, cached)
    if result.edits:
        result.fixed = _apply(text, result.edits, is_json, shown)
        _verify(result, is_json)
    return result


def _plan_field(result: FixPlan, doc: document.Document, f: model_id_fields.IdField, base_dir: Path,
                cached: tuple[str, ...]) -> None:
    d = model_id_diagnosis.diagnose(f.value, kind=f.kind, base_dir=base_dir, cached_ids=cached)
    line = doc.line_of(f.path)
    if d.rule is not None:
        if d.suggestion is not None and d.confident and d.suggestion != f.value:
            note = ""
            if d.revision and f.revision is None:
                note = f"the URL's revision {d.revision!r} was not written: put it in the revision key"
            result.edits.append(Edit(f.path, line, f.value, d.suggestion, d.rule, note))
        else:
            evidence = {"value": f.value, **d.evidence}
            why = "a guess, check it by hand" if d.suggestion is not None else "no safe fix"
            result.unfixed.append(d.rule.finding(
                f"not fixed ({why}): {d.message}", doc.location(f.path), suggestion=d.suggestion,
                evidence=evidence, severity=Severity.WARNING, line=line))
    if f.revision is not None and f.revision_path is not None and hub_id_grammar.revision_problems(f.revision):
        stripped = f.revision.strip()
        if stripped and not hub_id_grammar.revision_problems(stripped):
            result.edits.append(Edit(f.revision_path, doc.line_of(f.revision_path), f.revision, stripped,
                                     model_id_rules.INVALID_REVISION))


# --------------------------------------------------------------------------- span replacement


def _apply(text: str, edits: list[Edit], is_json: bool, shown: str) -> str:
    spans: dict[KeyPath, tuple[int, int, str | None]] | None = None
    if is_json or text.lstrip().startswith(("{", "[")):
        try:
            spans = {k: (a, b, '"') for k, (a, b) in json_string_spans(text).items()}
        except ValueError:
            spans = None
    if spans is None:
        spans = yaml_scalar_spans(text, shown)
    out = text
    for edit in sorted(edits, key=lambda e: spans.get(e.key_path, (-1, -1, None))[0], reverse=True):
        if edit.key_path not in spans:
            raise InputError(f"{shown}:{dotted(edit.key_path)}: cannot locate the value to rewrite")
        start, end, style = spans[edit.key_path]
        out = out[:start] + _render(edit.new, style, is_json) + out[end:]
    return out


def _render(value: str, style: str | None, is_json: bool) -> str:
    if is_json or style == '"':
        return json.dumps(value, ensure_ascii=False)
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if _PLAIN_SAFE.match(value) and _yaml_reads_as_string(value):
        return value
    return json.dumps(value, ensure_ascii=False)


def _yaml_reads_as_string(value: str) -> bool:
    import yaml

    try:
        return bool(yaml.safe_load(value) == value)
    except yaml.YAMLError:
        return False


def yaml_scalar_spans(text: str, shown: str = "<yaml>") -> dict[KeyPath, tuple[int, int, str | None]]:
    """``key path -> (start, end, style)`` of every scalar value that can be rewritten in place
    (plain, single- or double-quoted; block scalars are left out)."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise InputError(f"{shown}: invalid YAML: {exc}".splitlines()[0]) from None
    spans: dict[KeyPath, tuple[int, int, str | None]] = {}

    def walk(node: Any, path: KeyPath) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                walk(value_node, (*path, str(getattr(key_node, "value", key_node))))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))
        elif isinstance(node, yaml.ScalarNode) and node.style in (None, "'", '"'):
            spans[path] = (node.start_mark.index, node.end_mark.index, node.style)

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


def _verify(result: FixPlan, is_json: bool) -> None:
    """Re-read the fixed text: every edited key holds its new value, nothing else moved."""
    doc = document.loads(result.fixed, Path(result.display), is_json=is_json)
    for edit in result.edits:
        node: Any = doc.data
        for part in edit.key_path:
            node = node[part]
        if node != edit.new:
            raise RuntimeError(f"fix-model-ids: {result.display}:{dotted(edit.key_path)} reads back as {node!r}")


def write(result: FixPlan, *, backup: bool = True) -> Path | None:
    """Apply a plan: ``FILE.bak`` gets the original bytes, then ``FILE`` is replaced atomically."""
    if not result.changed:
        return None
    bak = result.path.with_name(result.path.name + ".bak") if backup else None
    if bak is not None:
        atomic.write_bytes(bak, result.raw)
    atomic.write_bytes(result.path, ((_BOM if result.bom else "") + result.fixed).encode("utf-8"))
    return bak


def findings(plans: list[FixPlan], *, written: bool) -> Iterator[Finding]:
    """One finding per edit (an error while pending, info once written) plus the unfixed ones."""
    for result in plans:
        for edit in result.edits:
            verb = "rewrote" if written else "would rewrite"
            message = f"{verb} {edit.old!r} -> {edit.new!r} ({edit.rule.name})"
            if edit.note:
                message += f"; {edit.note}"
            yield edit.rule.finding(
                message, f"{result.display}:{dotted(edit.key_path)}", suggestion=edit.new,
                evidence={"old": edit.old, "new": edit.new}, line=edit.line,
                severity=Severity.INFO if written else Severity.ERROR,
            )
        yield from result.unfixed
