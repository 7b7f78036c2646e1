"""One model-ID value judged offline (:func:`diagnose`), with a suggestion for every mistake that can be corrected.

Surrounding whitespace and quotes, Hub URLs, HF cache folder names, local paths (missing, a
file, not a model folder, an adapter), the dash form ``org-name`` (resolved by the local HF
cache, the table of well-known organisations or a last-resort heuristic) and IDs without a
namespace (legacy IDs, model families). The grammar itself is
:mod:`sftgate.gates.config.hub_id_grammar`; nothing here goes online.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sftgate.gates.config import known_models
from sftgate.gates.config.hub_id_grammar import RepoIdProblem, is_valid_repo_id, quoted, repo_id_problems
from sftgate.gates.config.model_id_rules import (
    DASH_SEPARATED_ID,
    INVALID_REPO_ID,
    LOCAL_PATH_MISSING,
    MISSING_NAMESPACE,
    NOT_A_MODEL_FOLDER,
    URL_NOT_ID,
)
from sftgate.gates.frame.core import Rule, Severity
from sftgate.gates.readers import hf_cache

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
_WINDOWS_DRIVE = re.compile(r"\A[A-Za-z]:[\\/]")
_URL_REV_KINDS = ("tree", "blob", "resolve", "commit", "raw")


@dataclass(frozen=True)
class Diagnosis:
    """What :func:`diagnose` concluded about one value.

    ``rule`` is None when the value is fine as it is. ``form`` is ``hub``, ``local``, ``url`` or
    ``invalid``. ``repo_id`` is the Hub ID to look up online (the value, or a suggestion).
    ``confident`` marks a suggestion ``fix-model-ids`` may apply without a human.
    """

    rule: Rule | None
    message: str = ""
    suggestion: str | None = None
    confident: bool = False
    form: str = "hub"
    repo_id: str | None = None
    revision: str | None = None
    severity: Severity | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def looks_local(value: str) -> bool:
    """``./x``, ``../x``, ``/x``, ``~/x``, ``.``, a Windows drive or a backslash: a path, not an ID."""
    return (
        value.startswith(("./", "../", "/", "~", ".\\", "..\\"))
        or value in (".", "..")
        or _WINDOWS_DRIVE.match(value) is not None
        or "\\" in value
    )


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _candidates(value: str, base_dir: Path | None) -> list[Path]:
    path = Path(os.path.expanduser(value))  # never raises, unlike Path.expanduser for '~nobody'
    if path.is_absolute():
        return [path]
    out = [base_dir / path] if base_dir is not None else []
    if path not in out:
        out.append(path)
    return out


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
) -> Diagnosis:
    """Judge one model-ID value offline (the file system and the given cache list only).

    Never raises for any string: every outcome is a :class:`Diagnosis`.
    """
    if not isinstance(value, str):
        return Diagnosis(INVALID_REPO_ID, f"model ID is a {type(value).__name__}, not a string", form="invalid")
    cleaned, steps = _safe_clean(value)
    if steps:
        return _diagnose_cleaned(value, cleaned, steps, kind, base_dir, cached_ids)
    return _diagnose(value, kind, base_dir, cached_ids)


def _diagnose_cleaned(value: str, cleaned: str, steps: list[str], kind: str, base_dir: Path | None,
                      cached_ids: Collection[str]) -> Diagnosis:
    what = ", ".join(steps)
    if cleaned == "":
        return Diagnosis(INVALID_REPO_ID, f"model ID {quoted(value)} is empty once {what} is stripped",
                         form="invalid", evidence={"stripped": steps})
    inner = _diagnose(cleaned, kind, base_dir, cached_ids)
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


def _diagnose(value: str, kind: str, base_dir: Path | None, cached_ids: Collection[str]) -> Diagnosis:
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
    elif looks_local(value) or any(_exists(p) for p in _candidates(value, base_dir)):
        return _diagnose_local(value, kind, base_dir)
    if value.startswith("models--"):
        repo_id = hf_cache.folder_to_repo_id(value)
        if repo_id is not None and is_valid_repo_id(repo_id):
            return Diagnosis(DASH_SEPARATED_ID, f"{quoted(value)} is an HF cache folder name; the Hub ID is {quoted(repo_id)}",
                             repo_id, True, repo_id=repo_id, evidence={"form": "cache_folder"})
    problems = repo_id_problems(value)
    if problems and "/" not in value and {p.code for p in problems} == {"length"}:
        dashed = _dash_split(value, cached_ids)  # org-name is longer than 96; org/name need not be
        if dashed is not None:
            return dashed
    if problems:
        return _diagnose_invalid(value, problems)
    if "/" in value:
        return Diagnosis(None, form="hub", repo_id=value)
    return _diagnose_single(value, kind, cached_ids)


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


_FILES_BY_KIND = {
    "model": ("config.json",),
    "tokenizer": ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "tekken.json",
                  "vocab.json", "spiece.model", "sentencepiece.bpe.model"),
    "adapter": ("adapter_config.json",),
}


def _diagnose_local(value: str, kind: str, base_dir: Path | None) -> Diagnosis:
    candidates = _candidates(value, base_dir)
    found = next((p for p in candidates if _exists(p)), None)
    if found is None:
        cached = hf_cache.snapshot_revision(Path(value))
        message = f"local model path {quoted(value)} does not exist"
        if len(candidates) > 1:
            message += f" (tried from {candidates[0].parent if base_dir is None else base_dir} and the current folder)"
        evidence: dict[str, Any] = {"tried": [str(p) for p in candidates]}
        if cached is not None and is_valid_repo_id(cached[0]):
            message += f"; it is the HF cache of {quoted(cached[0])}"
            return Diagnosis(LOCAL_PATH_MISSING, message, cached[0], False, form="local", revision=cached[1],
                             evidence={**evidence, "revision": cached[1]})
        return Diagnosis(LOCAL_PATH_MISSING, message, form="local", evidence=evidence)
    if not found.is_dir():
        return Diagnosis(NOT_A_MODEL_FOLDER, f"local path {quoted(value)} is a file, not a model folder",
                         form="local", evidence={"path": str(found)})
    try:
        names = sorted(entry.name for entry in os.scandir(found))
    except OSError as exc:
        return Diagnosis(NOT_A_MODEL_FOLDER, f"local folder {quoted(value)} cannot be read ({exc.strerror})", form="local")
    wanted = _FILES_BY_KIND.get(kind, _FILES_BY_KIND["model"])
    if any(name in names for name in wanted):
        return Diagnosis(None, form="local")
    evidence = {"files": names[:20], "expected": list(wanted)}
    cache_id = hf_cache.folder_to_repo_id(found.resolve().name) if "snapshots" in names else None
    if cache_id is not None and is_valid_repo_id(cache_id):
        return Diagnosis(NOT_A_MODEL_FOLDER, f"local folder {quoted(value)} is the HF cache folder of {quoted(cache_id)}, "
                         "not a model folder (use the Hub ID or a snapshots/<commit> folder)",
                         cache_id, False, form="local", evidence=evidence)
    if kind == "model" and "adapter_config.json" in names:
        return Diagnosis(NOT_A_MODEL_FOLDER, f"local folder {quoted(value)} holds a PEFT adapter (adapter_config.json), "
                         "not a full model: only AutoPeftModel classes load it", form="local",
                         severity=Severity.WARNING, evidence=evidence)
    return Diagnosis(NOT_A_MODEL_FOLDER, f"local folder {quoted(value)} has no {' / '.join(wanted[:3])}: not a {kind} folder",
                     form="local", evidence=evidence)


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


def _heuristic_split(value: str) -> tuple[str, str] | None:
    """The postmortem's heuristic, kept as the last resort: the first dash, when an uppercase
    letter or a known model family follows it (``acme-Model-7B``, ``acme-llama-3-8b``)."""
    head, sep, tail = value.partition("-")
    if not sep or not head or not tail:
        return None
    if tail[0].isupper() or known_models.family_org(tail) is not None:
        return head, tail
    return None


def _dash_split(value: str, cached_ids: Collection[str]) -> Diagnosis | None:
    """``org-name`` resolved by the local HF cache, else by the table of known organisations."""
    lowered = value.lower()
    dashed = sorted(rid for rid in cached_ids if "/" in rid and rid.replace("/", "-", 1).lower() == lowered)
    if dashed:
        return Diagnosis(DASH_SEPARATED_ID, f"{quoted(value)} is dash-separated; the local HF cache has {quoted(dashed[0])}",
                         dashed[0], len(dashed) == 1, repo_id=dashed[0],
                         evidence={"source": "hf_cache", "candidates": dashed})
    splits = known_models.known_org_splits(value)
    splits = [(org, name) for org, name in splits if is_valid_repo_id(f"{org}/{name}")]
    if not splits:
        return None
    repo_id = f"{splits[0][0]}/{splits[0][1]}"
    evidence: dict[str, Any] = {"source": "known_orgs"}
    if len(splits) > 1:
        evidence["candidates"] = [f"{o}/{n}" for o, n in splits]
    return Diagnosis(DASH_SEPARATED_ID, f"{quoted(value)} is dash-separated; {quoted(splits[0][0])} is an organisation, "
                     f"so the ID is {quoted(repo_id)}", repo_id, len(splits) == 1, repo_id=repo_id, evidence=evidence)


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
    dashed = _dash_split(value, cached_ids)
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
    split = _heuristic_split(value)
    if split is not None and is_valid_repo_id(f"{split[0]}/{split[1]}"):
        guess = f"{split[0]}/{split[1]}"
        return Diagnosis(DASH_SEPARATED_ID, f"{quoted(value)} looks dash-separated (org-Name); probably {quoted(guess)}",
                         guess, False, repo_id=guess, evidence={"source": "heuristic"})
    return Diagnosis(MISSING_NAMESPACE, f"{quoted(value)} has no namespace (org/name)", form="hub", repo_id=value)
