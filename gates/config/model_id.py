"""Gate ``model-id``: every model ID is a valid Hub ID or an existing local model folder.

The failure it stops: a config says ``mistralai-Mistral-7B-Instruct`` (dashes) where it meant
``mistralai/Mistral-7B-Instruct``; huggingface_hub's own ``validate_repo_id`` accepts it, and the
job dies at load time, after the GPU was allocated. The Hub's naming rules are sftgate's own
(not delegated to huggingface_hub, which accepts more than the Hub does), with a suggestion for
every mistake that can be corrected offline: a table of well-known organisations, legacy IDs,
the local HF cache, URLs and cache-folder names.

Entry points: :func:`check` (the gate), :func:`from_config` (an sftgate config) and
:func:`from_document` (any JSON/YAML config). One value is judged by
:func:`sftgate.gates.config.model_id_diagnosis.diagnose` (no I/O beyond the local file system), the
grammar alone by :mod:`sftgate.gates.config.hub_id_grammar`; the rules are
:mod:`sftgate.gates.config.model_id_rules`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sftgate.gates.config import model_id_fields
from sftgate.gates.config.hub_id_grammar import (
    COMMIT_REGEX,
    HEX_REVISION_REGEX,
    is_commit,
    is_valid_repo_id,
    quoted,
    revision_problems,
)
from sftgate.gates.config.model_id_diagnosis import Diagnosis, diagnose, looks_local
from sftgate.gates.config.model_id_rules import (
    GATED,
    INVALID_REVISION,
    NOT_FOUND,
    ONLINE_CHECK_SKIPPED,
    REVISION_NOT_FOUND,
    RULES,
    UNPINNED_REVISION,
)
from sftgate.gates.frame.core import Finding, GateSkipped, Severity
from sftgate.gates.readers import hf_cache

if TYPE_CHECKING:  # sftgate.gates.readers.document imports yaml; model-id on the command line does not need it
    from sftgate.gates.readers.document import Document

__all__ = ["RULES", "ModelRef", "check", "from_config", "from_document", "refs_from_document"]


# --------------------------------------------------------------------------- what to check


@dataclass(frozen=True)
class ModelRef:
    """One model ID to check and where it came from.

    ``location`` is ``FILE:key.path`` (or a label such as ``ID`` for the command line) and
    ``line`` its line when known; the revision has its own location. ``kind`` is ``model``,
    ``tokenizer``, ``adapter`` or ``publish`` (a repo to push to: never a local path, never
    pinned). Relative local paths are tried from ``base_dir`` (the config's folder), then from
    ``search_dirs`` (a tool's working-directory convention), then from the current folder.
    ``files`` overrides what a local folder must hold (a mistral-finetune model: params.json).
    """

    value: str
    location: str
    line: int | None = None
    revision: str | None = None
    revision_location: str | None = None
    revision_line: int | None = None
    kind: str = "model"
    base_dir: Path | None = None
    search_dirs: tuple[Path, ...] = ()
    files: tuple[str, ...] = ()


# --------------------------------------------------------------------------- the gate


def _finding(d: Diagnosis, ref: ModelRef) -> Finding:
    assert d.rule is not None
    evidence = {"value": ref.value, "kind": ref.kind, **d.evidence}
    if d.suggestion is not None:
        evidence["confident"] = d.confident
    return d.rule.finding(d.message, ref.location, suggestion=d.suggestion, evidence=evidence,
                          severity=d.severity, line=ref.line)


def check(
    *,
    ids: Sequence[ModelRef],
    release: bool = False,
    online: bool = False,
    client: Any = None,
    env: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
    source: str | None = None,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Check every model ID in ``ids``; yield a finding for each problem.

    ``release`` demands a 40-hex commit for every model and adapter from the Hub. ``online``
    asks the Hub (``client``, default huggingface_hub; ``HF_HUB_OFFLINE`` respected) whether each
    repo exists, is gated and has the revision. ``env`` (default the process environment) gives
    the HF cache location and the token. ``source`` names the file for the skip message.
    """
    if not ids:
        where = f" in {source}" if source else ""
        raise GateSkipped(f"no model-ID fields{where} (looked for model.id, model.name, base_model, "
                          "model_name_or_path, ...)")
    env = os.environ if env is None else env
    cached: tuple[str, ...] | None = None
    counts = {"ids": len(ids), "hub": 0, "local": 0, "online_lookups": 0}
    if online and client is None:
        from sftgate.gates.config import hub_client

        try:
            client = hub_client.make_client(env)
        except hub_client.HubUnavailable as exc:
            offline = hub_client.is_offline(env)
            yield ONLINE_CHECK_SKIPPED.finding(
                f"online checks not run: {exc}", ids[0].location, line=ids[0].line,
                severity=Severity.WARNING if offline else Severity.ERROR,
            )
            online = False
    for ref in ids:
        if cached is None and _needs_cache(ref.value):
            cached = hf_cache.cached_model_ids(cache_dir, env=env)
        d = diagnose(ref.value, kind=ref.kind, base_dir=ref.base_dir, cached_ids=cached or (),
                     base_dirs=ref.search_dirs, files=ref.files)
        counts["local" if d.form == "local" else "hub"] += 1
        if d.rule is not None:
            yield _finding(d, ref)
        if d.form == "local" or ref.kind == "publish":
            continue
        yield from _check_revision(ref, d, release, online, client, counts)
    if metrics is not None:
        metrics["ids_checked"] = counts["ids"]
        if counts["local"]:
            metrics["local_folders"] = counts["local"]
        if counts["online_lookups"]:
            metrics["online_lookups"] = counts["online_lookups"]


def _needs_cache(value: str) -> bool:
    text = value.strip()
    return "/" not in text and not looks_local(text)


def _check_revision(ref: ModelRef, d: Diagnosis, release: bool, online: bool, client: Any,
                    counts: dict[str, int]) -> Iterator[Finding]:
    rev_location = ref.revision_location or ref.location
    rev_line = ref.revision_line if ref.revision_location else ref.line
    revision = ref.revision if ref.revision is not None else d.revision
    valid_revision = revision
    if ref.revision is not None:
        problems = revision_problems(ref.revision)
        if problems:
            stripped = ref.revision.strip()
            fixed = stripped if stripped and not revision_problems(stripped) else None
            yield INVALID_REVISION.finding(
                f"revision {quoted(ref.revision)} " + "; ".join(problems), rev_location, suggestion=fixed,
                evidence={"revision": ref.revision, "confident": fixed is not None}, line=rev_line,
            )
            valid_revision = fixed
    sha: str | None = None
    repo_id = d.repo_id if d.rule is None or d.suggestion is not None else None
    if online and repo_id and is_valid_repo_id(repo_id):
        from sftgate.gates.config import hub_client

        counts["online_lookups"] += 1
        try:
            status = client.lookup(repo_id, valid_revision)
        except hub_client.HubUnavailable as exc:
            yield ONLINE_CHECK_SKIPPED.finding(f"online checks not run for {quoted(repo_id)}: {exc}", ref.location,
                                               line=ref.line, severity=Severity.ERROR)
            return
        checked_suggestion = d.rule is not None
        if not status.exists:
            if not checked_suggestion:
                yield NOT_FOUND.finding(
                    f"{quoted(repo_id)} does not exist on the Hub, or is private and HF_TOKEN cannot read it",
                    ref.location, evidence={"repo_id": repo_id}, line=ref.line,
                )
            return
        if status.gated:
            if status.access:
                yield GATED.finding(f"{quoted(repo_id)} is gated; this token has access, and every machine that "
                                    "loads it needs such a token (HF_TOKEN)", ref.location,
                                    evidence={"repo_id": repo_id, "access": True}, line=ref.line,
                                    severity=Severity.WARNING)
            else:
                yield GATED.finding(f"{quoted(repo_id)} is gated and this token has no access: accept its conditions "
                                    f"on https://huggingface.co/{repo_id} and set HF_TOKEN", ref.location,
                                    evidence={"repo_id": repo_id, "access": False}, line=ref.line)
                return
        if valid_revision is not None and status.revision_exists is False:
            yield REVISION_NOT_FOUND.finding(f"revision {quoted(valid_revision)} does not exist in {quoted(repo_id)}",
                                             rev_location, evidence={"repo_id": repo_id, "revision": valid_revision},
                                             line=rev_line)
            return
        sha = status.sha
    if release and ref.kind in ("model", "adapter") and not is_commit(valid_revision):
        yield _unpinned(ref, revision, valid_revision, sha, rev_location, rev_line)


def _unpinned(ref: ModelRef, revision: str | None, valid: str | None, sha: str | None, location: str,
              line: int | None) -> Finding:
    if revision is None:
        what = f"{quoted(ref.value)} has no revision"
        location, line = ref.location, ref.line
    elif valid is not None and COMMIT_REGEX.match(valid.lower()):
        what = f"revision {quoted(revision)} is an upper-case commit hash"
        sha = sha or valid.lower()
    elif valid is not None and HEX_REVISION_REGEX.match(valid):
        what = f"revision {quoted(revision)} is a short commit hash"
    else:
        what = f"revision {quoted(revision)} is a branch or tag"
    message = f"{what}; a release needs a 40-hex commit"
    if sha:
        message += f" ({quoted(revision or 'main')} is {sha[:12]}… now)"
    return UNPINNED_REVISION.finding(message, location, suggestion=sha, line=line,
                                     evidence={"revision": revision, "confident": sha is not None})


# --------------------------------------------------------------------------- from configs


def refs_from_document(doc: Document, *, sftgate: bool = False, base_dir: Path | None = None,
                       fields: Sequence[model_id_fields.IdField] | None = None,
                       search_dirs: tuple[Path, ...] = ()) -> list[ModelRef]:
    """The model-ID fields of ``doc`` as :class:`ModelRef` objects, located ``FILE:key.path``.

    ``fields`` are the fields to use (a peer tool's, :mod:`sftgate.gates.config.peer.fields`);
    by default an sftgate config's own, or whatever the generic finder sees.
    """
    if fields is None:
        fields = model_id_fields.sftgate_fields(doc.data) if sftgate else model_id_fields.find_id_fields(doc.data)
    base = base_dir if base_dir is not None else doc.path.parent
    return [
        ModelRef(
            value=f.value,
            location=doc.location(f.path),
            line=doc.line_of(f.path),
            revision=f.revision,
            revision_location=doc.location(f.revision_path) if f.revision_path else None,
            revision_line=doc.line_of(f.revision_path) if f.revision_path else None,
            kind=f.kind,
            base_dir=base,
            search_dirs=search_dirs,
            files=f.files,
        )
        for f in fields
    ]


def from_config(config: Any) -> dict[str, Any] | None:
    """Keyword arguments for :func:`check` from an sftgate config: ``model.id`` with
    ``model.revision``, ``model.tokenizer``, the publish target ``release.repo_id``, and release
    mode from ``release.require_pinned_revision``."""
    refs = refs_from_document(config.doc, sftgate=True, base_dir=config.base_dir)
    if not refs:
        return None
    return {"ids": refs, "release": bool(config.get("release.require_pinned_revision")), "source": str(config.path)}


def from_document(doc: Document, fields: Sequence[model_id_fields.IdField] | None = None,
                  search_dirs: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Keyword arguments for :func:`check` from any JSON or YAML config (its model-ID fields, or ``fields``)."""
    return {"ids": refs_from_document(doc, fields=fields, search_dirs=search_dirs), "source": str(doc.path)}
