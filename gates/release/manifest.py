"""Read a release manifest (``sftgate-manifest.json``) once, checked field by field.

Every reader of a manifest (the release gate, the model-card gate, the card writer) goes through
:func:`read_manifest`: a manifest that is missing, not JSON, nested too deeply, holds a number
of thousands of digits, or whose fields have the wrong types (``"base_model": "x"``,
``"files": []``, a gate whose ``findings`` is a string) is an :class:`InputError` naming the
field, which the release gate reports as ``manifest_mismatch``; nothing downstream meets a
field of a type it does not expect.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError

MANIFEST_NAME = "sftgate-manifest.json"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
_TEXT = {"type": ["string", "null"]}
_GATE = {
    "type": "object",
    "properties": {
        "gate": {"type": "string"}, "stage": {"type": "string"}, "status": {"type": "string"},
        "required": {"type": "boolean"}, "reason": _TEXT, "seconds": {"type": "number"},
        "findings": {"type": "array", "items": {"type": "object", "properties": {
            "rule": {"type": "string"}, "severity": {"type": "string"}, "code": {"type": "string"},
            "message": {"type": "string"}, "location": {"type": "string"}}}},
        "metrics": {"type": "object"},
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["files"],
    "properties": {
        "sftgate_manifest": {"type": "integer"},
        "tool": {"type": "string"}, "version": {"type": "string"}, "created_utc": {"type": "string"},
        "command": {"type": "string"}, "passed": {"type": "boolean"}, "source": {"type": "string"},
        "job_id": _TEXT,
        "base_model": {"type": ["object", "null"], "properties": {"id": _TEXT, "revision": _TEXT}},
        "provenance": {"type": ["object", "null"], "properties": {
            "base_model": {"type": ["object", "null"], "properties": {"hub_id": _TEXT}}}},
        "gates": {"type": "array", "items": _GATE},
        "files": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["sha256"],
            "properties": {"sha256": {"type": "string"}, "bytes": {"type": "integer", "minimum": 0}}}},
    },
}


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of the folder ``root``; :class:`InputError` when missing, unreadable or malformed."""
    path = Path(root) / MANIFEST_NAME
    try:
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise InputError(f"{path}: not a regular file", hint="promote the model again")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise InputError(f"{path}: over {MAX_MANIFEST_BYTES >> 20} MiB, not a manifest sftgate wrote")
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no release manifest", hint="promote the model to write one") from None
    except RecursionError:
        raise InputError(f"{path}: unreadable manifest (nested too deeply)", hint="promote the model again") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, a 5000-digit number
        raise InputError(f"{path}: unreadable manifest ({str(exc)[:200]})", hint="promote the model again") from None
    problem = _first_problem(value)
    if problem is not None:
        raise InputError(f"{path}: not an sftgate manifest ({problem})", hint="promote the model again")
    return value  # type: ignore[no-any-return]


def _first_problem(value: Any) -> str | None:
    from jsonschema import Draft202012Validator

    error = next(iter(Draft202012Validator(SCHEMA).iter_errors(value)), None)
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path) or "the top level"
    if error.validator == "required":
        return "no 'files' mapping"
    return f"{where}: {error.message[:120]}"
