"""Gate ``model-card``: a release carries a model card the Hub accepts, with a license, and a loadable base.

- ``model_card_invalid``: no ``README.md``, no YAML front matter, metadata that huggingface_hub's
  ``ModelCard`` / ``ModelCardData`` refuse, a field the Hub would refuse
  (:mod:`sftgate.gates.release.hub_metadata`), a missing ``base_model`` / ``library_name`` /
  ``pipeline_tag``, or a ``base_model`` that is not the base recorded in the manifest.
- ``license_missing``: the card has no ``license`` (the base's must be carried over: Llama, Gemma
  and Mistral licenses bind fine-tunes too).
- ``adapter_base_not_hub_id``: an adapter's ``adapter_config.json`` names its base as a local path
  or null (``base_model_name_or_path``): ``PeftModel.from_pretrained`` then fails for everyone
  else, and the Hub cannot link the base (peft PR #975, transformers #25222).

``sftgate release DIR --write-card`` and promotion write a card (:mod:`sftgate.gates.release.card_text`)
when there is none.

::

    check(model_dir="runs/x/release")
    check(model_dir="out/adapter", base_model="mistralai/Mistral-7B-v0.3")
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.config.hub_id_grammar import is_valid_repo_id
from sftgate.gates.config.model_id_local import looks_local
from sftgate.gates.frame.core import Finding, InputError, Rule, Severity
from sftgate.gates.release.hub_metadata import field_problems, license_problem
from sftgate.gates.release.manifest import read_manifest

GATE = "model-card"
CARD_NAME = "README.md"
REQUIRED = {"base_model": None, "library_name": "transformers", "pipeline_tag": "text-generation"}

MODEL_CARD_INVALID = Rule(
    "REL005", "model_card_invalid", Severity.ERROR, GATE,
    "the release's README.md model card is missing, or its YAML metadata is not what the Hub accepts",
    "The Hub reads the card's metadata to link the base model, show the license, list the model under its "
    "task and library, and gate downloads. A card without metadata, with a local path as base_model or "
    "another base than the one trained on, misleads every user of the model.",
    "`sftgate release DIR --write-card` writes a card from the manifest (base_model, library_name, license "
    "from the base, datasets, pipeline_tag); fix the field the finding names in an existing card.",
    "---\\nbase_model: ./models/base\\n---   # a local path, not a Hub ID",
)
LICENSE_MISSING = Rule(
    "REL006", "license_missing", Severity.ERROR, GATE,
    "the model card has no license",
    "A fine-tune inherits the base model's license (Llama, Gemma, Mistral research licenses bind derived "
    "models); a release without one is unusable for anyone who checks, and may break the base's terms.",
    "Set license in the card's metadata to the base model's (release.license in the config, or the base's "
    "README), e.g. license: apache-2.0.",
    "---\\nbase_model: meta-llama/Llama-3.1-8B\\n---   # no license: llama3.1",
)
ADAPTER_BASE_NOT_HUB_ID = Rule(
    "REL007", "adapter_base_not_hub_id", Severity.ERROR, GATE,
    "an adapter's base_model_name_or_path is a local path or null, not a Hub ID",
    "PeftModel.from_pretrained loads the base from adapter_config.json: a path of the training machine or "
    "null fails for everyone else, and the Hub cannot link the adapter to its base (peft PR #975, "
    "transformers #25222).",
    "Set base_model_name_or_path in adapter_config.json to the base's Hub ID (model.id), e.g. "
    "mistralai/Mistral-7B-v0.3, before publishing.",
    '"base_model_name_or_path": "/home/me/models/mistral-7b"',
)

RULES = (MODEL_CARD_INVALID, LICENSE_MISSING, ADAPTER_BASE_NOT_HUB_ID)


# --------------------------------------------------------------------------- reading


def parse_card(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """``(metadata, None)`` from a card's front matter via huggingface_hub's ``ModelCard``, else ``(None, why)``."""
    if not text.lstrip().startswith("---"):
        return None, "no YAML metadata block (the card must start with ---)"
    from huggingface_hub import ModelCard

    try:
        card = ModelCard(text, ignore_metadata_errors=False)
    except Exception as exc:  # yaml errors, "metadata block should be a dict", an invalid model-index
        return None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    return card.data.to_dict(), None


def read_card_metadata(folder: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """The metadata of ``folder/README.md`` (a base model's, for its license), or None."""
    if folder is None:
        return None
    path = Path(folder) / CARD_NAME
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() else None
    except (OSError, UnicodeDecodeError):
        return None
    return parse_card(text)[0] if text else None


def manifest_base(root: Path) -> str | None:
    """The base model's Hub ID recorded in the release manifest (``base_model.id``, else provenance's hub_id)."""
    try:
        return base_in_manifest(read_manifest(root))  # every field of the type it should have
    except InputError:
        return None


def base_in_manifest(manifest: dict[str, Any]) -> str | None:
    """:func:`manifest_base` of a manifest already read."""
    candidates = [(manifest.get("base_model") or {}).get("id"),
                  ((manifest.get("provenance") or {}).get("base_model") or {}).get("hub_id")]
    for value in candidates:
        if isinstance(value, str) and is_hub_id(value):
            return value
    return None


def is_hub_id(value: Any) -> bool:
    """A ``namespace/name`` Hub ID that is not a local path (nor a folder that exists here)."""
    return (isinstance(value, str) and not looks_local(value) and is_valid_repo_id(value, require_namespace=True)
            and not os.path.isdir(os.path.expanduser(value)))


def _line(text: str, key: str) -> int | None:
    lines = text.split("\n")
    for number, line in enumerate(lines[1:], start=2):
        if line.strip() == "---":
            return None
        if line.startswith(f"{key}:"):
            return number
    return None


# --------------------------------------------------------------------------- the gate


def check(
    *,
    model_dir: str | os.PathLike[str],
    base_model: str | None = None,
    license_hint: str | None = None,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Yield the model-card findings of the release folder ``model_dir``.

    ``base_model``: the base's Hub ID (default: the manifest's); ``license_hint``: the base's license,
    for the suggestion of ``license_missing``.
    """
    root = Path(model_dir)
    if not root.is_dir():
        raise InputError(f"{root}: release folder not found", hint="pass the folder `sftgate run` promoted")
    metrics = metrics if metrics is not None else {}
    expected = base_model or manifest_base(root)
    card_base = (read_card_metadata(root) or {}).get("base_model")
    yield from _adapter_findings(root, expected or (card_base if is_hub_id(card_base) else None))
    card = root / CARD_NAME
    fix = f"sftgate release {root} --write-card"
    if not card.is_file():
        yield MODEL_CARD_INVALID.finding(f"{card.name} is missing: the release has no model card", str(card),
                                         suggestion=fix, evidence={"field": None})
        return
    try:
        text = card.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        yield MODEL_CARD_INVALID.finding(f"{card.name} is unreadable ({exc})", str(card), suggestion=fix)
        return
    metadata, why = parse_card(text)
    metrics["model_card"] = "parsed" if metadata is not None else "invalid"
    if metadata is None:
        yield MODEL_CARD_INVALID.finding(f"{card.name}: {why}", f"{card}:1", suggestion=fix, evidence={"field": None})
        return

    def at(key: str) -> str:
        line = _line(text, key)
        return f"{card}:{line}" if line else f"{card}:{key}"

    if not metadata.get("license"):
        yield LICENSE_MISSING.finding(
            f"{card.name} has no license" + (f" (the base model's is {license_hint!r})" if license_hint else ""),
            at("license"), suggestion=f"license: {license_hint}" if license_hint else "license: <the base model's>",
            evidence={"base_license": license_hint},
        )
    problems = [p for p in [license_problem(metadata)] if p is not None] + list(field_problems(metadata))
    for key, default in REQUIRED.items():
        if metadata.get(key) in (None, "", []):
            value = expected if key == "base_model" else default
            if value:
                suggestion = f"{key}: {value}"
            elif key == "base_model":  # a base known only as a local folder: its Hub ID is the user's to give
                suggestion = "base_model: <the Hub ID the base came from> (no Hub ID is recorded: model.id is a local folder)"
            else:
                suggestion = fix
            evidence: dict[str, Any] = {"field": key}
            if key == "base_model":
                evidence["hub_id_known"] = bool(value)  # False: the card cannot be written for the user
            yield MODEL_CARD_INVALID.finding(f"{card.name} has no {key}", at(key), suggestion=suggestion,
                                             evidence=evidence)
    for problem in problems:
        suggestion = problem.suggestion or (f"base_model: {expected}" if problem.key == "base_model" and expected else None)
        yield MODEL_CARD_INVALID.finding(f"{card.name}: {problem.message}", at(problem.key),
                                         suggestion=suggestion, evidence={"field": problem.key})
    declared = metadata.get("base_model")
    declared_ids = [declared] if isinstance(declared, str) else declared if isinstance(declared, list) else []
    if expected and declared_ids and expected not in declared_ids and not any(p.key == "base_model" for p in problems):
        yield MODEL_CARD_INVALID.finding(
            f"{card.name}: base_model {declared!r} is not the base the manifest records ({expected!r})",
            at("base_model"), suggestion=f"base_model: {expected}",
            evidence={"field": "base_model", "card": declared, "manifest": expected},
        )


def _adapter_findings(root: Path, expected: str | None) -> Iterator[Finding]:
    config = root / "adapter_config.json"
    if not config.is_file():
        return
    try:
        value = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return  # the artifacts gate reports a corrupt adapter_config.json
    if not isinstance(value, dict):
        return
    base = value.get("base_model_name_or_path")
    if is_hub_id(base):
        return
    what = "null" if base is None else ("a local path" if isinstance(base, str) and (
        looks_local(base) or os.path.isdir(os.path.expanduser(base))) else "not a Hub ID")
    yield ADAPTER_BASE_NOT_HUB_ID.finding(
        f"adapter_config.json names its base {json.dumps(base)}: {what}, so PeftModel.from_pretrained "
        "fails anywhere but on the training machine",
        f"{config}:base_model_name_or_path",
        suggestion=f'"base_model_name_or_path": "{expected}"' if expected else "set it to the base's Hub ID (model.id)",
        evidence={"base_model_name_or_path": base, "expected": expected},
    )
