"""Find the model-ID fields of any JSON or YAML config: sftgate's own and everyone else's.

A training job, an axolotl or TRL config, a mergekit recipe: each names its base model under a
different key. This module knows the common ones (:data:`ID_KEYS`, anywhere in the document,
and :data:`CHILD_KEYS` under a model-like parent such as ``model.name``) and pairs each with
the revision that sits beside it (``model.revision``, ``model_revision``, ...).

Only non-empty strings are reported: ``tokenizer_name: null`` or ``""`` usually means "same as
the model". An adapter key may hold a comma-separated list (LLaMA-Factory's
``adapter_name_or_path: alice/lora-a,bob/lora-b``): each entry is a field of its own, with
:attr:`IdField.part` its index. Nothing here judges a value; :mod:`sftgate.gates.config.model_id` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # sftgate.gates.readers.document imports yaml at import time; this module stays stdlib-only
    from sftgate.gates.readers.document import KeyPath

# Kinds: "model" (weights + config.json), "tokenizer", "adapter" (a PEFT adapter), and
# "publish" (a repo to push to, never a local path).
ID_KEYS: dict[str, str] = {
    "model": "model",  # only when its value is a string (mergekit, vLLM, many job specs)
    "model_id": "model",
    "model_name": "model",
    "model_name_or_path": "model",
    "model_path": "model",
    "model_id_or_path": "model",  # mistral-finetune
    "pretrained_model_name_or_path": "model",
    "base_model": "model",
    "base_model_id": "model",
    "base_model_name_or_path": "model",
    "base_model_config": "model",
    "teacher_model_name_or_path": "model",
    "ref_model_name_or_path": "model",
    "reward_model_name_or_path": "model",
    "draft_model": "model",
    "ref_model": "model",  # LLaMA-Factory (a string; a mapping is a parent, below)
    "reward_model": "model",  # LLaMA-Factory (axolotl's reward_model is a boolean: skipped)
    "tokenizer": "tokenizer",  # only when its value is a string
    "tokenizer_id": "tokenizer",
    "tokenizer_name": "tokenizer",
    "tokenizer_name_or_path": "tokenizer",
    "tokenizer_config": "tokenizer",
    "adapter_name_or_path": "adapter",
    "peft_model_id": "adapter",
    "lora_model_dir": "adapter",  # axolotl
    "ref_model_adapters": "adapter",  # LLaMA-Factory
    "reward_model_adapters": "adapter",
    "hub_model_id": "publish",
    "push_to_hub_model_id": "publish",
    "export_hub_model_id": "publish",  # LLaMA-Factory
}
# Revision keys beside a model key that its stem does not name (axolotl's revision_of_model).
REVISION_KEYS: dict[str, tuple[str, ...]] = {
    "base_model": ("revision_of_model", "model_revision"),
    "base_model_config": ("revision_of_model", "model_revision"),
}
LIST_KINDS = frozenset({"adapter"})  # kinds whose value may be a comma-separated list

# Parents whose child ``name``/``id``/``path``/... is a model ID: ``model.name``, ``tokenizer.id``.
PARENT_KINDS: dict[str, str] = {
    "model": "model",
    "base_model": "model",
    "teacher": "model",
    "teacher_model": "model",
    "ref_model": "model",
    "reward_model": "model",
    "student": "model",
    "policy": "model",
    "tokenizer": "tokenizer",
    "adapter": "adapter",
    "hub": "publish",
    "push_to_hub": "publish",
    "release": "publish",
}
CHILD_KEYS = frozenset({"name", "id", "path", "name_or_path", "repo", "repo_id", "pretrained", "hub_id"})

_SUFFIXES = ("_name_or_path", "_model_id", "_id", "_name", "_path", "_config")
MAX_DEPTH = 32


@dataclass(frozen=True)
class IdField:
    """One model-ID field: where it is, its value, what it names, and its revision if any."""

    path: KeyPath
    value: str
    kind: str
    revision: str | None = None
    revision_path: KeyPath | None = None
    part: int | None = None  # the index in a comma-separated list
    whole: str | None = None  # the whole value of that list
    files: tuple[str, ...] = ()  # what a local folder must hold, when not the kind's usual files

    @property
    def dotted(self) -> str:
        from sftgate.gates.readers.document import dotted

        return dotted(self.path)


def _norm(key: Any) -> str:
    return str(key).strip().lower().replace("-", "_")


def _revision_beside(mapping: dict[Any, Any], key: str, kind: str, child: bool) -> tuple[str | None, str | None]:
    """The revision key next to ``key`` in ``mapping``: ``{stem}_revision``, else ``revision``."""
    norm_keys = {_norm(k): k for k in mapping}
    stem = key
    for suffix in _SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break
    candidates = [f"{stem}_revision", *REVISION_KEYS.get(key, ())]
    if child or kind == "model":
        candidates.append("revision")
    for cand in candidates:
        original = norm_keys.get(cand)
        if original is not None and isinstance(mapping[original], str):
            return mapping[original], original
    return None, None


def find_id_fields(data: Any) -> list[IdField]:
    """Every model-ID field in a foreign config, in document order."""
    return list(_walk(data, (), None, 0))


def _walk(node: Any, path: KeyPath, parent: str | None, depth: int) -> Iterator[IdField]:
    if depth > MAX_DEPTH:
        return
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk(item, (*path, i), parent, depth + 1)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        norm = _norm(key)
        key_path = (*path, str(key))
        kind = None
        child = False
        if isinstance(value, str):
            if parent in PARENT_KINDS and norm in CHILD_KEYS:
                kind, child = PARENT_KINDS[parent], True
            elif norm in ID_KEYS:
                kind = ID_KEYS[norm]
        if kind is not None and value != "":
            revision, rev_key = (None, None) if kind == "publish" else _revision_beside(node, norm, kind, child)
            yield from split_field(IdField(
                path=key_path,
                value=value,
                kind=kind,
                revision=revision,
                revision_path=(*path, str(rev_key)) if rev_key is not None else None,
            ))
        elif isinstance(value, dict | list):
            yield from _walk(value, key_path, norm, depth + 1)


def split_field(field: IdField, separator: str = ",", *, always: bool = False) -> Iterator[IdField]:
    """``field`` itself, or one field per entry of its comma-separated list (adapters, unless ``always``)."""
    if (field.kind not in LIST_KINDS and not always) or separator not in field.value:
        yield field
        return
    parts = field.value.split(separator)
    for index, part in enumerate(parts):
        if part.strip():
            yield IdField(field.path, part.strip(), field.kind, field.revision, field.revision_path,
                          part=index, whole=field.value, files=field.files)


def sftgate_fields(data: Any) -> list[IdField]:
    """The model-ID fields of an sftgate config: ``model.id`` (with ``model.revision``),
    ``model.tokenizer`` and the publish target ``release.repo_id``."""
    if not isinstance(data, dict):
        return []
    out: list[IdField] = []
    model = data.get("model")
    if isinstance(model, dict):
        rev = model.get("revision")
        rev = rev if isinstance(rev, str) else None
        if isinstance(model.get("id"), str):
            out.append(IdField(("model", "id"), model["id"], "model", rev, ("model", "revision") if rev is not None else None))
        if isinstance(model.get("tokenizer"), str) and model["tokenizer"]:
            out.append(IdField(("model", "tokenizer"), model["tokenizer"], "tokenizer"))
    release = data.get("release")
    if isinstance(release, dict) and isinstance(release.get("repo_id"), str):
        out.append(IdField(("release", "repo_id"), release["repo_id"], "publish"))
    return out
