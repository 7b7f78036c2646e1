"""The dash form ``org-name`` of a Hub ID: resolved where it is certain, listed where it is a guess.

Certain: the local HF cache has the repo (``my-team/my-model`` for ``my-team-my-model``), or
exactly one known organisation (the packaged table, or one the HF cache holds) starts the value.
A guess: every other reading, one per dash, ranked by how much it looks like ``org/name`` (a
model family after the dash, the organisation's name echoed in the model's, an uppercase letter
or a size such as ``7B`` after the dash, an organisation suffix such as ``-ai`` or ``-org``
before it). A guess is a WARNING that lists all its readings; only a certain split is an error.
No uppercase letter is needed after the dash: ``replit-replit-code-v1-3b`` is flagged too.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from sftgate.gates.config import known_models
from sftgate.gates.config.hub_id_grammar import is_valid_repo_id, quoted
from sftgate.gates.config.model_id_rules import DASH_SEPARATED_ID
from sftgate.gates.config.model_id_verdict import Diagnosis
from sftgate.gates.frame.core import Severity

MAX_CANDIDATES = 20
_SIZE = re.compile(r"\A\d+(?:\.\d+)?[bBmMkK]\Z|\A\d+x\d+[bB]\Z")  # 7B, 1.1B, 125M, 8x7B
_VERSION = re.compile(r"\A[vV]?\d+(?:\.\d+)*\Z")  # 3, v1, 2.5
_ORG_SUFFIXES = frozenset({"ai", "org", "inc", "lab", "labs", "team", "research", "community", "hf", "co", "quants",
                           "nlp", "ml", "llm", "group", "official", "collective", "tech", "io", "dev"})


def dash_split(value: str, cached_ids: Collection[str]) -> Diagnosis | None:
    """``org-name`` resolved by the local HF cache or the known organisations; None when neither knows."""
    lowered = value.lower()
    dashed = sorted(rid for rid in cached_ids if "/" in rid and rid.replace("/", "-", 1).lower() == lowered)
    if dashed:
        return Diagnosis(DASH_SEPARATED_ID, f"{quoted(value)} is dash-separated; the local HF cache has {quoted(dashed[0])}",
                         dashed[0], len(dashed) == 1, repo_id=dashed[0],
                         severity=None if len(dashed) == 1 else Severity.WARNING,
                         evidence={"source": "hf_cache", "candidates": dashed})
    splits = known_models.known_org_splits(value, known_models.orgs_of(cached_ids))
    splits = [(org, name) for org, name in splits if is_valid_repo_id(f"{org}/{name}")]
    if not splits:
        return None
    repo_id = f"{splits[0][0]}/{splits[0][1]}"
    evidence: dict[str, Any] = {"source": "known_orgs"}
    if len(splits) > 1:
        evidence["candidates"] = [f"{o}/{n}" for o, n in splits]
    return Diagnosis(DASH_SEPARATED_ID, f"{quoted(value)} is dash-separated; {quoted(splits[0][0])} is an organisation, "
                     f"so the ID is {quoted(repo_id)}" + ("" if len(splits) == 1 else
                                                          f" (or {', '.join(evidence['candidates'][1:4])})"),
                     repo_id, len(splits) == 1, repo_id=repo_id,
                     severity=None if len(splits) == 1 else Severity.WARNING, evidence=evidence)


def plausibility(org: str, name: str) -> int:
    """How much ``org/name`` looks like a real Hub ID (higher is likelier); see the module doc."""
    org_tokens = org.lower().split("-")
    name_tokens = name.split("-")
    first = name_tokens[0]
    score = 0
    if known_models.family_prefix(name) is not None:
        score += 3
    if len(first) >= 3 and (first.lower() in org.lower().replace("-", "") or org_tokens[-1] in first.lower()):
        score += 3  # replit-replit-code, OpenMOSS-Team-moss-moon, deepcogito-cogito
    if first[:1].isupper():
        score += 2
    if any(_SIZE.match(t) for t in name_tokens):
        score += 1
    if org_tokens[-1] in _ORG_SUFFIXES and len(org_tokens) > 1:
        score += 1
    if any(_SIZE.match(t) or _VERSION.match(t) for t in org_tokens):
        score -= 3  # a size or version belongs to the model name, not the organisation
    if _SIZE.match(first) or _VERSION.match(first):
        score -= 2
    return score


def plausible_splits(value: str) -> list[tuple[str, str]]:
    """Every valid ``(org, name)`` reading of ``value`` at one of its dashes, likeliest first."""
    readings = []
    for i, ch in enumerate(value):
        if ch == "-" and 0 < i < len(value) - 1:
            org, name = value[:i], value[i + 1 :]
            if is_valid_repo_id(f"{org}/{name}"):
                readings.append((org, name))
    return sorted(readings, key=lambda s: (-plausibility(*s), len(s[0])))


def dash_guess(value: str) -> Diagnosis | None:
    """A single segment with a dash, read as ``org-name`` with an organisation nobody knows: a WARNING."""
    readings = plausible_splits(value)
    if not readings:
        return None
    candidates = [f"{o}/{n}" for o, n in readings]
    guess = candidates[0]
    others = f"; other readings: {', '.join(candidates[1:4])}" + (" …" if len(candidates) > 4 else "") \
        if len(candidates) > 1 else ""
    return Diagnosis(DASH_SEPARATED_ID, f"{quoted(value)} has no '/' and reads as dash-separated (org-name); "
                     f"probably {quoted(guess)}{others}", guess, False, repo_id=guess, severity=Severity.WARNING,
                     evidence={"source": "heuristic", "candidates": candidates[:MAX_CANDIDATES]})
