"""The model-ID fields of a config, read the way its tool reads them.

A recognised peer config has exact keys (``tools.json`` ``model_fields``: base model, tokenizer,
adapters with their comma lists split, reference and reward models, hub export IDs, and the
revision keys beside them); an sftgate config has its own; any other file goes through the
generic finder of :mod:`sftgate.gates.config.model_id_fields`. :func:`fields_for` picks.
"""

from __future__ import annotations

from typing import Any

from sftgate.gates.config import model_id_fields
from sftgate.gates.config.model_id_fields import IdField, split_field
from sftgate.gates.config.peer import detect, tables


def peer_fields(data: Any, tool: str) -> list[IdField]:
    """The model-ID fields of a ``tool`` config (top-level keys of its table), in table order."""
    if not isinstance(data, dict):
        return []
    out: list[IdField] = []
    for entry in tables.tools_info()[tool]["model_fields"]:
        key = entry["key"]
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        kind = entry["kind"]
        for by_key, kinds in (entry.get("kind_by") or {}).items():
            if str(data.get(by_key)) in kinds:
                kind = kinds[str(data.get(by_key))]
        if kind is None or value.lower().endswith(tuple(entry.get("unless_suffix", ()))):
            continue
        revision, revision_key = None, None
        for rev_key in entry.get("revision", ()):
            if isinstance(data.get(rev_key), str):
                revision, revision_key = data[rev_key], rev_key
                break
        field = IdField((key,), value, kind, revision, (revision_key,) if revision_key else None,
                        files=tuple(entry.get("files", ())))
        separator = entry.get("split")
        out.extend(split_field(field, separator, always=True) if separator else [field])
    return out


def fields_for(data: Any, detection: detect.Detection) -> list[IdField]:
    """The model-ID fields of a document whose format is ``detection``."""
    if detection.format == detect.SFTGATE:
        return model_id_fields.sftgate_fields(data)
    if detection.is_peer:
        return peer_fields(data, detection.format)
    if detection.format == detect.NOT_A_JOB:
        return []
    return model_id_fields.find_id_fields(data)


def recognise(doc: Any, forced: str | None = None) -> detect.Detection:
    """The format of a loaded document (``--format-of`` when given): sftgate, a peer tool, or generic."""
    from sftgate.gates.readers import config as config_mod

    is_sftgate = config_mod.is_sftgate_config(doc)
    has_fields = is_sftgate or bool(model_id_fields.find_id_fields(doc.data))
    return detect.detect(doc.data, is_sftgate=is_sftgate, has_model_fields=has_fields, forced=forced)
