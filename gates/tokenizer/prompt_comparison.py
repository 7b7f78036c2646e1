"""What gate ``prompt-alignment`` compares, and how it names a difference.

The examples rendered both ways (the fixed cases, else a data sample), the text a chat template
injects in the system slot by itself, the first differing line of two templates, the cause of a
training/inference prompt difference, and a system message every training record carries while
the fixed cases and the inference config have none (:func:`data_system_finding`).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding
from sftgate.gates.readers import tokenizer_io
from sftgate.gates.tokenizer.data_scan import DataScan
from sftgate.gates.tokenizer.prompt_alignment_rules import TEMPLATE_MISMATCH
from sftgate.gates.tokenizer.prompt_spec import PROBE_SYSTEM, PROBE_USER, PromptSpec, RenderError
from sftgate.gates.tokenizer.template_rendering import apply_template

CASE_SAMPLE = 20  # data records compared when there are no fixed cases
SYSTEM_SHARE = 0.9  # "every record carries its own system message": at least this share
SYSTEM_SAMPLE = 200  # records read for the system text of the suggestion


# --------------------------------------------------------------------------- template probes


def implicit_system_text(tok: Any, spec: PromptSpec) -> str | None:
    """Text the template renders in the system slot when the conversation has no system message.

    Renders ``[user]`` and ``[system, user]``; after removing their common prefix and suffix,
    what is left of the first is what the template added by itself (``None`` when nothing).
    """
    user = {"role": "user", "content": PROBE_USER}
    system = {"role": "system", "content": PROBE_SYSTEM}
    try:
        bare = apply_template(tok, [user], spec, add_generation_prompt=True)
        given = apply_template(tok, [system, user], spec, add_generation_prompt=True)
    except RenderError:
        return None
    prefix = 0
    limit = min(len(bare), len(given))
    while prefix < limit and bare[prefix] == given[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and bare[-1 - suffix] == given[-1 - suffix]:
        suffix += 1
    extra = bare[prefix:len(bare) - suffix]
    return extra if extra.strip() else None


def first_line_difference(a: str, b: str) -> tuple[int, str, str]:
    """The first line (1-based) where two templates differ, and both sides of it (cut to 120 characters)."""
    la, lb = a.splitlines(), b.splitlines()
    for index in range(max(len(la), len(lb))):
        left = la[index] if index < len(la) else ""
        right = lb[index] if index < len(lb) else ""
        if left != right:
            return index + 1, left[:120], right[:120]
    return 1, "", ""


# --------------------------------------------------------------------------- fixed cases


def comparison_examples(
    cases: str | Path | None,
    cases_display: str | None,
    data: str | Path | None,
    data_display: str | None,
    scan: DataScan | None,
    spec: PromptSpec,
    inference: PromptSpec,
    roles: frozenset[str] | None = None,
) -> list[tuple[str, str, dict[str, Any]]]:
    """``(location, label, example)`` to render both ways: the fixed cases (whose roles must be in
    ``roles``, the role policy of the templates), else a data sample."""
    if cases is not None:
        from sftgate.gates.readers.cases import load_cases

        shown = cases_display or str(cases)
        return [(f"{shown}:{c.line}", f"case {c.id!r}", c.as_example()) for c in load_cases(cases, roles=roles)]
    if data is None or inference == spec:
        return []
    shown = data_display or str(data)
    out: list[tuple[str, str, dict[str, Any]]] = []
    for line, record in tokenizer_io.iter_records(data, display=data_display):
        if len(out) >= CASE_SAMPLE:
            break
        out.append((f"{shown}:{line}", f"record on line {line}", record))
    return out


def mismatch_cause(
    train_text: str, inf_text: str, spec: PromptSpec, inference: PromptSpec, templates_differ: bool
) -> str:
    """Why a case renders differently for training and inference: system prompt, generation prompt, template."""
    if spec.system != inference.system:
        if spec.system is None:
            return "system_prompt_at_inference_only"
        if inference.system is None:
            return "system_prompt_in_training_only"
        return "different_system_prompt"
    if train_text.startswith(inf_text):
        return "missing_generation_prompt"
    if templates_differ:
        return "different_chat_template"
    return "different_rendering"


def data_system_finding(
    scan: DataScan | None,
    data: str | Path | None,
    data_display: str | None,
    case_examples: list[tuple[str, str, dict[str, Any]]],
    spec: PromptSpec,
    inference: PromptSpec,
) -> Finding | None:
    """``template_mismatch`` when the training records carry their own system message (nearly all of
    them) while no fixed case has one and the inference config adds none: serving sends other prompts."""
    if scan is None or data is None or not case_examples or spec.system is not None or inference.system is not None:
        return None
    chat = [r for r in scan.records if r.kind == "messages"]
    with_system = sum(1 for r in chat if r.has_system)
    if not chat or with_system / len(chat) < SYSTEM_SHARE:
        return None
    if any(_first_role(example) == "system" for _, _, example in case_examples):
        return None
    texts: Counter[str] = Counter()
    for seen, (_, record) in enumerate(tokenizer_io.iter_records(data, display=data_display)):
        if seen >= SYSTEM_SAMPLE:
            break
        messages = record.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict) and messages[0].get("role") == "system":
            texts[str(messages[0].get("content"))] += 1
    common, count = texts.most_common(1)[0] if texts else ("", 0)
    share = with_system / len(chat)
    dominant = count > 0 and count * 2 >= sum(texts.values())  # one system text for most records
    return TEMPLATE_MISMATCH.finding(
        f"{with_system} of {len(chat)} training records ({share:.0%}) carry their own system message, but no fixed "
        f"case has one and prompt.inference_system is not set: inference prompts lack it (e.g. {common[:60]!r})",
        case_examples[0][0],
        suggestion=f"prompt.inference_system: {json.dumps(common)}" if dominant
        else "give the fixed cases the training data's system message",
        evidence={"cause": "system_prompt_in_training_data_only", "records_with_system": with_system,
                  "records": len(chat), "share": round(share, 6), "system_text": common[:200],
                  "distinct_system_texts": len(texts)},
    )


def _first_role(example: dict[str, Any]) -> Any:
    messages = example.get("messages")
    return messages[0].get("role") if isinstance(messages, list) and messages and isinstance(messages[0], dict) else None
