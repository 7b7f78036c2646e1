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
from sftgate.gates.config.value_spans import json_string_spans, yaml_scalar_spans
from sftgate.gates.frame.core import Finding, InputError, Rule, Severity
from sftgate.gates.frame.escape import visible, visible_lines
from sftgate.gates.readers import atomic, document, hf_cache, textfile
from sftgate.gates.readers.document import KeyPath, dotted

_BOM = "\ufeff"
# A value that can stay a plain YAML scalar: an ID, a path, or a comma-separated list of them.
_PLAIN_SAFE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9._/-]*(?:, ?[A-Za-z0-9_][A-Za-z0-9._/-]*)*\Z")


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
        shown = visible(self.display)
        # git's a/ b/ prefixes for a relative path; an absolute path stays as it is (patch -p0)
        before, after = (shown, shown) if Path(self.display).is_absolute() else (f"a/{shown}", f"b/{shown}")
        lines = difflib.unified_diff(old, new, fromfile=before, tofile=after)
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def plan(path: str | Path, *, env: Mapping[str, str] | None = None, display: str | None = None,
         format_of: str | None = None) -> FixPlan:
    """Read ``path`` and work out every confident fix; nothing is written.

    The model-ID fields are those of the config's format (:mod:`sftgate.gates.config.peer`:
    mistral-finetune's ``model_id_or_path``, LLaMA-Factory's comma-separated adapters, ...);
    ``format_of`` forces the format.
    """
    from sftgate.gates.config.peer.fields import fields_for, recognise
    from sftgate.gates.config.peer.jobs import search_dirs

    p = Path(path)
    shown = display or str(path)
    raw = textfile.read_bytes(p, display=shown, expected="a JSON or YAML file")
    text = textfile.decode(raw, display=shown, encoding="utf-8")  # the BOM is kept and handled below
    bom = text.startswith(_BOM)
    if bom:
        text = text[1:]
    is_json = p.suffix.lower() == ".json"
    doc = document.loads(text, Path(shown), is_json=is_json)
    detection = recognise(doc, format_of)
    fields = fields_for(doc.data, detection)
    cached = hf_cache.cached_model_ids(env=env)
    result = FixPlan(path=p, display=shown, original=text, fixed=text, raw=raw, bom=bom)
    dirs = search_dirs(p)[1:] if detection.is_peer else ()
    parts: dict[KeyPath, list[Edit]] = {}
    for f in fields:
        _plan_field(result, doc, f, p.parent, cached, dirs, parts)
    for key_path, edits in parts.items():
        result.edits.append(_joined(key_path, edits, fields))
    if result.edits:
        result.fixed = _apply(text, result.edits, is_json, shown)
        _verify(result, is_json)
    return result


def _joined(key_path: KeyPath, edits: list[Edit], fields: list[model_id_fields.IdField]) -> Edit:
    """One edit for a comma-separated list whose entries have fixes: the whole value, rewritten entry by entry."""
    whole = next(f.whole for f in fields if f.path == key_path and f.whole is not None)
    assert whole is not None
    entries = whole.split(",")
    fixes = {e.old: e.new for e in edits}
    new = ",".join(entry.replace(entry.strip(), fixes[entry.strip()]) if entry.strip() in fixes else entry
                   for entry in entries)
    return Edit(key_path, edits[0].line, whole, new, edits[0].rule, "; ".join(e.note for e in edits if e.note))


def _plan_field(result: FixPlan, doc: document.Document, f: model_id_fields.IdField, base_dir: Path,
                cached: tuple[str, ...], dirs: tuple[Path, ...] = (),
                parts: dict[KeyPath, list[Edit]] | None = None) -> None:
    d = model_id_diagnosis.diagnose(f.value, kind=f.kind, base_dir=base_dir, cached_ids=cached, base_dirs=dirs,
                                    files=f.files)
    line = doc.line_of(f.path)
    if d.rule is not None:
        if d.suggestion is not None and d.confident and d.suggestion != f.value:
            note = ""
            if d.revision and f.revision is None:
                note = f"the URL's revision {d.revision!r} was not written: put it in the revision key"
            edit = Edit(f.path, line, f.value, d.suggestion, d.rule, note)
            if f.part is not None and parts is not None:
                parts.setdefault(f.path, []).append(edit)  # one edit of the whole list, later
            else:
                result.edits.append(edit)
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
            if any(o.key_path in spans and (o.old, o.new) == (edit.old, edit.new) for o in edits):
                continue  # a YAML alias (*base) of a value rewritten at its anchor
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
    """Apply a plan: ``FILE.bak`` gets the original bytes, then ``FILE`` is replaced atomically.

    A symlinked ``FILE`` stays a link: the file it points to is the one rewritten.
    """
    if not result.changed:
        return None
    bak = result.path.with_name(result.path.name + ".bak") if backup else None
    if bak is not None:
        atomic.write_bytes(bak, result.raw)
    atomic.write_bytes(result.path.resolve(), ((_BOM if result.bom else "") + result.fixed).encode("utf-8"))
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
