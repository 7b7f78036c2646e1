"""Well-known Hub organisations and canonical IDs, for suggestions that need no network.

The tables are data (``gates/schemas/known_models.json``), loaded once:

- :data:`KNOWN_ORGS`: organisations that publish open-weight models, in their exact case. They
  split a dash-separated ID (``mistralai-Mistral-7B-Instruct``) at the right dash, even when the
  organisation itself has a dash (``deepseek-ai-DeepSeek-R1``, ``01-ai-Yi-34B``).
- :data:`CANONICAL_IDS`: legacy single-segment IDs and where the Hub moved them
  (``gpt2`` -> ``openai-community/gpt2``).
- :data:`FAMILY_PREFIXES`: model-family name prefixes and the organisation that usually
  publishes them (``Mistral-`` -> ``mistralai``), a low-confidence guess for a bare name.

Organisations whose model names start with the organisation's own name and a dash (``albert``,
``xlnet``, ``distilbert``, ``replit``) are deliberately not in :data:`KNOWN_ORGS`:
``albert-xxlarge-v2`` is a legacy name, not ``albert/xxlarge-v2``. Their legacy names live in
:data:`CANONICAL_IDS`; the dash heuristic of :mod:`sftgate.gates.config.model_id_diagnosis`
still lists ``replit/replit-code-v1-3b`` for ``replit-replit-code-v1-3b``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from importlib import resources
from typing import Any


def _load() -> dict[str, Any]:
    text = resources.files("sftgate.gates").joinpath("schemas/known_models.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


_DATA = _load()
KNOWN_ORGS: tuple[str, ...] = tuple(_DATA["orgs"])
CANONICAL_IDS: dict[str, str] = dict(_DATA["canonical_ids"])
# (name prefix, organisation), most specific first; matched case-insensitively at the start of a
# bare name. A guess, never applied by ``fix-model-ids``.
FAMILY_PREFIXES: tuple[tuple[str, str], ...] = tuple((p, o) for p, o in _DATA["family_prefixes"])

_ORG_BY_LOWER = {org.lower(): org for org in KNOWN_ORGS}
_CANONICAL_BY_LOWER = {name.lower(): repo for name, repo in CANONICAL_IDS.items()}


def canonical_org(name: str) -> str | None:
    """The exact spelling of a known organisation (``qwen`` -> ``Qwen``), or None."""
    return _ORG_BY_LOWER.get(name.lower())


def canonical_id(name: str) -> str | None:
    """The canonical ``org/name`` of a legacy single-segment ID (``gpt2``), or None."""
    return _CANONICAL_BY_LOWER.get(name.lower())


def known_org_splits(text: str, extra_orgs: Collection[str] = ()) -> list[tuple[str, str]]:
    """Every ``(org, name)`` reading of a dash-separated ``org-name`` where ``org`` is known.

    Longest organisation first: ``google-bert-bert-base`` reads as ``google-bert`` + ``bert-base``
    before ``google`` + ``bert-bert-base``. Organisations come back in their canonical case;
    ``extra_orgs`` (the organisations in the local HF cache) count as known too. A reading whose
    name starts with a digit while the whole text is a model-family name of that organisation
    (``TinyLlama-1.1B-Chat``, ``Qwen-7B``) is a bare name, not a dash form, and is left out.
    """
    extra = {org.lower(): org for org in extra_orgs}
    family = family_org(text)
    splits = []
    for i, ch in enumerate(text):
        if ch != "-" or i == 0 or i == len(text) - 1:
            continue
        org = canonical_org(text[:i]) or extra.get(text[:i].lower())
        if org is None:
            continue
        name = text[i + 1 :]
        if name[0].isdigit() and family is not None and family.lower() == org.lower():
            continue
        splits.append((org, name))
    return sorted(splits, key=lambda s: -len(s[0]))


def family_org(name: str) -> str | None:
    """The organisation that usually publishes a bare model name (``Mistral-7B-v0.1``), or None."""
    lower = name.lower()
    for prefix, org in FAMILY_PREFIXES:
        if lower.startswith(prefix.lower()):
            return org
    return None


def family_prefix(name: str) -> str | None:
    """The model-family prefix a name starts with (``Llama-3``), or None."""
    lower = name.lower()
    return next((prefix for prefix, _ in FAMILY_PREFIXES if lower.startswith(prefix.lower())), None)


def orgs_of(repo_ids: Iterable[str]) -> tuple[str, ...]:
    """The organisations of ``org/name`` IDs (the local HF cache's), without repeats."""
    return tuple(dict.fromkeys(rid.partition("/")[0] for rid in repo_ids if "/" in rid))
