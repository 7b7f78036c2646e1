"""Which tool a config is for, from its keys (:func:`detect`), or that it is no job config at all.

A peer format is recognised when top-level keys that only this tool documents are there (one,
with at least 60% of all keys its options; or two, with at least half); the tool with the most
such keys wins (then the one that knows the larger share). A file that holds no model-ID field and looks
like an accelerate, DeepSpeed, FSDP or launcher file is :data:`NOT_A_JOB`. Anything else is
:data:`GENERIC`: its model-ID fields are still checked, as before. ``--format-of`` overrides it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sftgate.gates.config.peer import tables

SFTGATE = "sftgate"
GENERIC = "generic"
NOT_A_JOB = "not_a_job"
FORMATS: tuple[str, ...] = (*tables.TOOLS, SFTGATE)
MIN_SHARE = 0.5  # with two keys only this tool has
MIN_SHARE_ONE = 0.6  # with one


@dataclass(frozen=True)
class Detection:
    """The format taken (``axolotl``... ``sftgate``, ``generic``, ``not_a_job``) and why."""

    format: str
    why: str
    forced: bool = False
    what: str | None = None  # for a file that is not a job config: "an accelerate config"
    scores: dict[str, Any] = field(default_factory=dict)

    @property
    def is_peer(self) -> bool:
        return self.format in tables.TOOLS

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format, "why": self.why}
        if self.forced:
            out["forced"] = True
        if self.is_peer:
            out["key_table"] = tables.table(self.format).described
        if self.scores:
            out["scores"] = self.scores
        return out


def detect(data: Any, *, is_sftgate: bool = False, has_model_fields: bool = True,
           forced: str | None = None) -> Detection:
    """Recognise the format of a config's parsed ``data``.

    ``is_sftgate``: the file is named or marked as an sftgate config; ``has_model_fields``: the
    generic finder saw model-ID fields (a file with any is never "not a job config").
    """
    if forced:
        return Detection(forced, f"forced with --format-of {forced}", forced=True)
    if is_sftgate:
        return Detection(SFTGATE, "named sftgate.* or has `sftgate:` / `model.id`")
    if not isinstance(data, Mapping) or not data:
        return Detection(GENERIC, "not a mapping of keys")
    if not has_model_fields:
        what = not_a_job(data)
        if what is not None:
            return Detection(NOT_A_JOB, f"no model-ID field, and its keys are those of {what}", what=what)
    keys = [str(k) for k in data]
    scores = _scores(keys)
    ranked = sorted(scores.items(), key=lambda kv: (-len(kv[1]["only"]), -kv[1]["share"]))
    best_tool, best = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else None
    summary = {tool: {"only": len(s["only"]), "share": s["share"]} for tool, s in scores.items()}
    tie = runner_up is not None and (len(runner_up["only"]), runner_up["share"]) == (len(best["only"]), best["share"])
    enough = best["share"] >= (MIN_SHARE if len(best["only"]) >= 2 else MIN_SHARE_ONE)
    if best["only"] and enough and not tie:
        label = tables.table(best_tool).label
        only = ", ".join(best["only"][:5])
        why = (f"{best['known']} of {len(keys)} top-level keys are {label} options; "
               f"{len(best['only'])} only {label} has ({only})")
        return Detection(best_tool, why, scores=summary)
    if best["only"] and tie:
        why = f"ambiguous: as many keys of {best_tool} as of {ranked[1][0]} (use --format-of)"
    elif best["only"]:
        why = (f"the closest tool, {best_tool}, knows only {best['share']:.0%} of the keys "
               f"(not enough to tell; use --format-of to force it)")
    else:
        why = "no key is specific to axolotl, LLaMA-Factory, TRL or mistral-finetune"
    return Detection(GENERIC, why, scores=summary)


def _scores(keys: list[str]) -> dict[str, dict[str, Any]]:
    only = tables.distinctive_keys()
    out = {}
    for tool in tables.TOOLS:
        if set(tables.tools_info()[tool].get("not_if_keys", ())) & set(keys):
            out[tool] = {"known": 0, "share": 0.0, "only": []}  # another format of this tool (LLaMA-Factory v1)
            continue
        known = [k for k in keys if k in tables.table(tool).keys]
        out[tool] = {"known": len(known), "share": round(len(known) / len(keys), 3),
                     "only": [k for k in keys if k in only[tool]]}
    return out


def not_a_job(data: Mapping[Any, Any]) -> str | None:
    """What a file is when its keys are those of an accelerate/DeepSpeed/FSDP/launcher file, else None."""
    keys = {str(k).lower() for k in data}
    for entry in tables.tools_info().get("not_job", ()):
        prefix = entry.get("prefix")
        if prefix and keys and all(k.startswith(prefix) for k in keys):
            return str(entry["what"])
        for group in entry.get("any_of", ()):
            if {g.lower() for g in group} <= keys:
                return str(entry["what"])
    return None
