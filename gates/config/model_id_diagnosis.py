"""One model-ID value judged offline (:func:`diagnose`), with a suggestion for every mistake that can be corrected.

Surrounding whitespace and quotes, Hub URLs, HF cache folder names, local paths
(:mod:`~sftgate.gates.config.model_id_local`: missing, a file, not a model folder, an adapter,
``a/b/c`` and ``models/x`` that are paths, not IDs), the dash form ``org-name``
(:mod:`~sftgate.gates.config.model_id_dash`: the local HF cache, the known organisations, else a
warning with every reading) and IDs without a namespace (legacy IDs, model families). The
grammar itself is :mod:`sftgate.gates.config.hub_id_grammar`; nothing here goes online.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sftgate.gates.config import known_models
from sftgate.gates.config.hub_id_grammar import RepoIdProblem, is_valid_repo_id, quoted, repo_id_problems
from sftgate.gates.config.model_id_dash import dash_guess, dash_split
from sftgate.gates.config.model_id_local import (
    candidates,
    diagnose_local,
    exists,
    folder_like_missing,
    looks_local,
    missing_relative,
)
from sftgate.gates.config.model_id_rules import (
    DASH_SEPARATED_ID,
    INVALID_REPO_ID,
    LOCAL_PATH_MISSING,
    MISSING_NAMESPACE,
    NOT_A_MODEL_FOLDER,
    URL_NOT_ID,
)
from sftgate.gates.config.model_id_verdict import Diagnosis
from sftgate.gates.readers import hf_cache

__all__ = ["Diagnosis", "diagnose", "looks_local"]

_SCHEME = re.compile(r"\A[A-Za-z][A-Za-z0-9+.-]*://")
_HUB_URL = re.compile(
    r"""
    \A
    (?:
        (?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co)/   # a Hub web URL, scheme optional
      | hf://                                               # an fsspec URL (HfFileSystem)
    )
    (?P<path>[^?#]*)                                        # the repo path (query and fragment dropped)
    """,
    re.VERBOSE | re.IGNORECASE,
)
_URL_REV_KINDS = ("tree", "blob", "resolve", "commit", "raw")


def _safe_clean(value: str) -> tuple[str, list[str]]:
    """Strip what can safely be stripped; return the result and what was stripped."""
    steps: list[str] = []
    text = value
    if text.strip() != text:
        text = text.strip()
        steps.append("surrounding whitespace")
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"`":
        text = text[1:-1].strip()
        steps.append("surrounding quotes")
    if re.search(r"\s/|/\s", text) and not any(ch.isspace() for ch in re.sub(r"\s*/\s*", "/", text)):
        text = re.sub(r"\s*/\s*", "/", text)
        steps.append("whitespace around '/'")
    if text and not looks_local(text) and not _SCHEME.match(text) and not _HUB_URL.match(text):
        if text.endswith("/") and text.rstrip("/"):
            text = text.rstrip("/")
            steps.append("a trailing '/'")
        if text.endswith(".git") and len(text) > 4:
            text = text[:-4]
            steps.append("the '.git' suffix")
    return text, steps


def diagnose(
    value: str,
    *,
    kind: str = "model",
    base_dir: Path | None = None,
    cached_ids: Collection[str] = (),
    base_dirs: Sequence[Path] = (),
    files: Sequence[str] = (),
) -> Diagnosis:
    """Judge one model-ID value offline (the file system and the given cache list only).

    Relative paths are tried from ``base_dir`` and ``base_dirs`` (in that order), then from the
    current folder; ``files`` overrides what a local folder of this ``kind`` must hold (a
    mistral-finetune model folder has ``params.json``). Never raises for any string: every
    outcome is a :class:`Diagnosis`.
    """
    if not isinstance(value, str):
        return Diagnosis(INVALID_REPO_ID, f"model ID is a {type(value).__name__}, not a string", form="invalid")
    ctx = _Context(kind, (*([base_dir] if base_dir is not None else []), *base_dirs), cached_ids, tuple(files))
    cleaned, steps = _safe_clean(value)
    if steps:
        return _diagnose_cleaned(value, cleaned, steps, ctx)
    return _diagnose(value, ctx)


class _Context:
    """What every step of one diagnosis needs."""

    __slots__ = ("base_dirs", "cached_ids", "files", "kind")

    def __init__(self, kind: str, base_dirs: Sequence[Path], cached_ids: Collection[str], files: tuple[str, ...]):
        self.kind = kind
        self.base_dirs = tuple(base_dirs)
        self.cached_ids = cached_ids
        self.files = files


def _diagnose_cleaned(value: str, cleaned: str, steps: list[str], ctx: _Context) -> Diagnosis:
    what = ", ".join(steps)
    if cleaned == "":
        return Diagnosis(INVALID_REPO_ID, f"model ID {quoted(value)} is empty once {what} is stripped",
                         form="invalid", evidence={"stripped": steps})
    inner = _diagnose(cleaned, ctx)
    evidence = {**inner.evidence, "stripped": steps}
    if inner.rule in (URL_NOT_ID, DASH_SEPARATED_ID):
        return replace(inner, message=f"{inner.message} (and {what})", evidence=evidence)
    if inner.rule is None or inner.suggestion is not None:
        suggestion = inner.suggestion if inner.suggestion is not None else cleaned
        confident = inner.confident if inner.suggestion is not None else True
    elif inner.rule in (MISSING_NAMESPACE, LOCAL_PATH_MISSING, NOT_A_MODEL_FOLDER):
        suggestion, confident = cleaned, True  # stripping is still right; the rest needs a human
    else:
        suggestion, confident = None, False
    message = f"model ID {quoted(value)} has {what}"
    if inner.rule is not None:
        message += f"; stripped, {inner.message[0].lower()}{inner.message[1:]}"
    return Diagnosis(INVALID_REPO_ID, message, suggestion, confident, form=inner.form,
                     repo_id=inner.repo_id, revision=inner.revision, evidence=evidence)


def _diagnose(value: str, ctx: _Context) -> Diagnosis:
    kind = ctx.kind
    if value == "":
        return Diagnosis(INVALID_REPO_ID, "model ID is empty", form="invalid", evidence={"problems": ["empty"]})
    url = _diagnose_url(value)
    if url is not None:
        return url
    if _SCHEME.match(value):
        return Diagnosis(INVALID_REPO_ID, f"{quoted(value)} is a URL: from_pretrained takes a Hub ID (org/name) "
                         "or a local folder", form="invalid", evidence={"problems": ["url"]})
    if kind == "publish":
        if looks_local(value):
            return Diagnosis(INVALID_REPO_ID, f"publish target {quoted(value)} is a local path, not a Hub repo ID",
                             form="invalid", evidence={"problems": ["local_path"]})
    elif looks_local(value) or any(exists(p) for p in candidates(value, ctx.base_dirs)):
        return diagnose_local(value, kind, ctx.base_dirs, ctx.files)
    if value.startswith("models--"):
        repo_id = hf_cache.folder_to_repo_id(value)
        if repo_id is not None and is_valid_repo_id(repo_id):
            return Diagnosis(DASH_SEPARATED_ID, f"{quoted(value)} is an HF cache folder name; the Hub ID is {quoted(repo_id)}",
                             repo_id, True, repo_id=repo_id, evidence={"form": "cache_folder"})
    problems = repo_id_problems(value)
    codes = {p.code for p in problems}
    if problems and "/" not in value and codes == {"length"}:
        dashed = dash_split(value, ctx.cached_ids)  # org-name is longer than 96; org/name need not be
        if dashed is not None:
            return dashed
    if codes == {"slashes"} and kind != "publish" and all(is_valid_repo_id(s) for s in value.split("/")):
        return missing_relative(value, ctx.base_dirs)
    if problems:
        return _diagnose_invalid(value, problems)
    if "/" in value:
        folder = folder_like_missing(value, ctx.base_dirs) if kind != "publish" else None
        if folder is not None and value.partition("/")[0] not in known_models.orgs_of(ctx.cached_ids):
            return folder
        return Diagnosis(None, form="hub", repo_id=value)
    return _diagnose_single(value, kind, ctx.cached_ids)


def _diagnose_url(value: str) -> Diagnosis | None:
    match = _HUB_URL.match(value)
    if match is None:
        return None
    segments = [unquote(s) for s in match.group("path").split("/") if s]
    if segments and segments[0].lower() in ("datasets", "spaces"):
        what = "dataset" if segments[0].lower() == "datasets" else "Space"
        return Diagnosis(URL_NOT_ID, f"{quoted(value)} is the URL of a {what}, not of a model", form="url",
                         evidence={"url_kind": what.lower()})
    if segments and segments[0].lower() == "models" and len(segments) > 1:
        segments = segments[1:]
    if not segments:
        return Diagnosis(URL_NOT_ID, f"{quoted(value)} is a Hub URL without a repo", form="url")
    if len(segments) == 1:
        repo_id = known_models.canonical_id(segments[0]) or segments[0]
        revision = None
    else:
        repo_id = f"{segments[0]}/{segments[1]}"
        revision = segments[3] if len(segments) >= 4 and segments[2] in _URL_REV_KINDS else None
    if repo_id.endswith(".git"):
        repo_id = repo_id[:-4]
    if not is_valid_repo_id(repo_id):
        return Diagnosis(URL_NOT_ID, f"{quoted(value)} is a URL, not a model ID", form="url")
    message = f"{quoted(value)} is a URL, not a model ID; the ID is {quoted(repo_id)}"
    evidence: dict[str, Any] = {}
    if revision:
        message += f" and the revision {quoted(revision)}"
        evidence["revision"] = revision
    return Diagnosis(URL_NOT_ID, message, repo_id, True, form="url", repo_id=repo_id, revision=revision,
                     evidence=evidence)


def _diagnose_invalid(value: str, problems: list[RepoIdProblem]) -> Diagnosis:
    codes = [p.code for p in problems]
    evidence: dict[str, Any] = {"problems": codes}
    if "/" not in value and codes == ["double_dash"]:
        parts = value.split("--")
        if len(parts) == 2 and is_valid_repo_id(f"{parts[0]}/{parts[1]}"):
            repo_id = f"{parts[0]}/{parts[1]}"
            return Diagnosis(DASH_SEPARATED_ID, f"{quoted(value)} uses the cache separator '--'; the Hub ID is {quoted(repo_id)}",
                             repo_id, True, repo_id=repo_id, evidence={"form": "cache_separator"})
    message = f"model ID {quoted(value)} " + "; ".join(p.detail for p in problems)
    if "slashes" in codes:
        message += "; and it is not an existing local folder"
    return Diagnosis(INVALID_REPO_ID, message, form="invalid", evidence=evidence)


def _diagnose_single(value: str, kind: str, cached_ids: Collection[str]) -> Diagnosis:
    """A grammatical single segment: a legacy ID, a dash-separated ``org-name``, or a bare name."""
    if kind == "publish":
        return Diagnosis(MISSING_NAMESPACE, f"publish target {quoted(value)} has no namespace: it would be created "
                         "under whoever's token runs the job", form="hub")
    canonical = known_models.canonical_id(value)
    if canonical is not None:
        return Diagnosis(MISSING_NAMESPACE, f"{quoted(value)} is a legacy ID without a namespace; the canonical ID is "
                         f"{quoted(canonical)}", canonical, True, repo_id=canonical, evidence={"source": "legacy_table"})
    if known_models.canonical_org(value) is not None:
        return Diagnosis(MISSING_NAMESPACE, f"{quoted(value)} names an organisation, not a model (org/name)",
                         form="hub", evidence={"source": "known_orgs"})
    dashed = dash_split(value, cached_ids)
    if dashed is not None:
        return dashed
    named = sorted(rid for rid in cached_ids if rid.partition("/")[2] == value)
    if named:
        return Diagnosis(MISSING_NAMESPACE, f"{quoted(value)} has no namespace; the local HF cache has {quoted(named[0])}",
                         named[0], len(named) == 1, repo_id=named[0],
                         evidence={"source": "hf_cache", "candidates": named})
    org = known_models.family_org(value)
    if org is not None:
        guess = f"{org}/{value}"
        return Diagnosis(MISSING_NAMESPACE, f"{quoted(value)} has no namespace; {quoted(org)} publishes this family, "
                         f"so probably {quoted(guess)}", guess, False, repo_id=guess, evidence={"source": "model_family"})
    guessed = dash_guess(value)
    if guessed is not None:
        return guessed
    return Diagnosis(MISSING_NAMESPACE, f"{quoted(value)} has no namespace (org/name)", form="hub", repo_id=value)
