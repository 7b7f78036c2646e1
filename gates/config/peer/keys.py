"""Validate a peer config's keys against its tool's table: unknown keys, types, keys that need each other.

:func:`check_keys` walks the document (top level, the nested sections the table describes, the
items of ``datasets``) and yields ``unknown_config_key`` with a did-you-mean (close spellings,
the tool's renamed options, another tool's name for the same option), ``wrong_config_type``
and the constraints of ``tools.json`` (``missing_config_key``, ``conflicting_config_keys``).

Types are judged as the tool reads them: axolotl (pydantic, lax mode) and TRL (argparse parses
string defaults) convert numeric strings, LLaMA-Factory passes values on as they are, so there
``learning_rate: "2e-4"`` (quoted: a string) is an error. A nested section the tool passes on to
another library (axolotl's ``fsdp_config``) is only type-checked. Values of secret keys (tokens,
keys, passwords) are never quoted.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from sftgate.gates.adapter.json_problem import json_type
from sftgate.gates.config.peer.rules import (
    CONFLICTING_CONFIG_KEYS,
    MISSING_CONFIG_KEY,
    UNKNOWN_CONFIG_KEY,
    WRONG_CONFIG_TYPE,
)
from sftgate.gates.config.peer.tables import KeySpec, KeyTable
from sftgate.gates.frame.core import Finding, Severity
from sftgate.gates.readers.document import Document, KeyPath, dotted

_SECRET = re.compile(r"token|secret|password|passwd|api_key|apikey|credential", re.IGNORECASE)
_NUMBER = re.compile(r"\A[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\Z")
_BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}
# Tools that convert a value's text to the option's type (pydantic lax mode, argparse defaults).
CONVERTING = frozenset({"axolotl", "trl", "mistral-finetune"})
# Tools whose string options take comma-separated lists and accept YAML lists too (split_arg).
LIST_AS_STRING = frozenset({"llamafactory"})
MAX_DEPTH = 8
CUTOFF = 0.75  # difflib similarity a did-you-mean needs

# The same option under each tool's name: a key another tool uses gets this tool's as the suggestion.
EQUIVALENTS: tuple[dict[str, str], ...] = (
    {"axolotl": "sequence_len", "llamafactory": "cutoff_len", "trl": "max_length", "mistral-finetune": "seq_len"},
    {"axolotl": "base_model", "llamafactory": "model_name_or_path", "trl": "model_name_or_path",
     "mistral-finetune": "model_id_or_path"},
    {"axolotl": "lora_r", "llamafactory": "lora_rank", "trl": "lora_r"},
    {"axolotl": "lora_target_modules", "llamafactory": "lora_target", "trl": "lora_target_modules"},
    {"axolotl": "num_epochs", "llamafactory": "num_train_epochs", "trl": "num_train_epochs"},
    {"axolotl": "micro_batch_size", "llamafactory": "per_device_train_batch_size",
     "trl": "per_device_train_batch_size", "mistral-finetune": "batch_size"},
    {"axolotl": "train_on_inputs", "llamafactory": "train_on_prompt"},
    {"axolotl": "sample_packing", "llamafactory": "packing", "trl": "packing"},
    {"axolotl": "chat_template", "llamafactory": "template", "trl": "chat_template_path"},
    {"axolotl": "datasets", "llamafactory": "dataset", "trl": "dataset_name"},
    {"axolotl": "output_dir", "llamafactory": "output_dir", "trl": "output_dir", "mistral-finetune": "run_dir"},
)
# Names users bring for a tool's option: renamed options (TRL's max_seq_length became max_length
# in 0.20, transformers' evaluation_strategy eval_strategy) and common names of other trainers.
RENAMED: dict[str, dict[str, str]] = {
    "trl": {"max_seq_length": "max_length", "torch_dtype": "dtype", "evaluation_strategy": "eval_strategy"},
    "llamafactory": {"evaluation_strategy": "eval_strategy", "max_seq_length": "cutoff_len",
                     "max_seq_len": "cutoff_len"},
    "axolotl": {"max_seq_length": "sequence_len", "max_length": "sequence_len", "max_seq_len": "sequence_len"},
    "mistral-finetune": {"max_seq_length": "seq_len", "max_seq_len": "seq_len"},
}


def is_secret(key: str) -> bool:
    return _SECRET.search(key) is not None


def did_you_mean(key: str, table: KeyTable, known: Mapping[str, KeySpec]) -> list[str]:
    """The likely intended keys for an unknown ``key``, best first."""
    out: list[str] = []
    renamed = RENAMED.get(table.tool, {}).get(key)
    if renamed and renamed in known:
        out.append(renamed)
    for group in EQUIVALENTS:
        if key in group.values() and group.get(table.tool) in known:
            out.append(group[table.tool])
    lowered = {k.lower(): k for k in known}
    if key.lower() in lowered:
        out.append(lowered[key.lower()])
    # difflib's ratio is at most 2*min(len)/(len + len): only keys of a close length can reach the cutoff
    pool = [k for k in known if 2 * min(len(k), len(key)) >= CUTOFF * (len(k) + len(key))]
    out.extend(difflib.get_close_matches(key, pool, n=3, cutoff=CUTOFF))
    return list(dict.fromkeys(k for k in out if k != key))[:3]


def check_keys(doc: Document, table: KeyTable) -> Iterator[Finding]:
    """Every key finding of ``doc`` against ``table``."""
    data = doc.data if isinstance(doc.data, dict) else {}
    plugins = [str(p) for p in data.get("plugins") or () if isinstance(p, str)] if table.tool == "axolotl" else []
    yield from _walk(doc, table, table.keys, data, (), plugins, 0)
    yield from check_constraints(doc, table)


def _walk(doc: Document, table: KeyTable, known: Mapping[str, KeySpec], node: Mapping[Any, Any], path: KeyPath,
          plugins: list[str], depth: int, open_section: bool = False) -> Iterator[Finding]:
    if depth > MAX_DEPTH:
        return
    for raw_key, value in node.items():
        key = str(raw_key)
        key_path = (*path, key)
        spec = known.get(key)
        if spec is None:
            if not open_section:
                yield _unknown(doc, table, known, key, key_path)
            continue
        if spec.plugin and not any(f".{spec.plugin}." in p or p.endswith(f".{spec.plugin}") for p in plugins):
            yield UNKNOWN_CONFIG_KEY.finding(
                f"'{key}' is an option of axolotl's {spec.plugin} plugin, which `plugins:` does not list: "
                "axolotl ignores it", doc.location(key_path), line=doc.line_of(key_path), severity=Severity.WARNING,
                evidence={"key": key, "plugin": spec.plugin, "table": table.described})
        problem = type_problem(key, value, spec, table.tool)
        if problem is not None:
            yield WRONG_CONFIG_TYPE.finding(f"{dotted(key_path)}: {problem}", doc.location(key_path),
                                            line=doc.line_of(key_path), suggestion=_enum_guess(value, spec),
                                            evidence={"key": dotted(key_path), "expected": sorted(spec.types),
                                                      "got": json_type(value)})
            continue
        nested = table.section(spec.section)
        if nested is not None and isinstance(value, dict):
            is_open = spec.section in table.info.get("open_sections", {})
            yield from _walk(doc, table, nested, value, key_path, plugins, depth + 1, is_open)
        items = table.section(spec.items)
        if items is not None and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    yield from _walk(doc, table, items, item, (*key_path, i), plugins, depth + 1)


def _unknown(doc: Document, table: KeyTable, known: Mapping[str, KeySpec], key: str, key_path: KeyPath) -> Finding:
    guesses = did_you_mean(key, table, known)
    where = "" if len(key_path) == 1 else f" in {dotted(key_path[:-1])}"
    message = f"unknown {table.label} option '{key}'{where}"
    if guesses:
        message += f"; did you mean '{guesses[0]}'?"
    ignores = table.info.get("ignores_unknown", table.tool == "axolotl")
    tool = table.info.get("tool_label", table.label)
    message += f" ({tool} would {'ignore it silently' if ignores else 'stop at start-up'})"
    return UNKNOWN_CONFIG_KEY.finding(message, doc.location(key_path), line=doc.line_of(key_path),
                                      suggestion=guesses[0] if guesses else None,
                                      evidence={"key": key, "did_you_mean": guesses, "table": table.described})


def type_problem(key: str, value: Any, spec: KeySpec, tool: str) -> str | None:
    """Why ``value`` is not a valid value of ``spec`` for ``tool``, or None."""
    allowed = spec.types
    shown = "a value" if is_secret(key) else _show(value)
    if "any" in allowed:
        return None
    got = json_type(value)
    if got == "null":
        return None if "null" in allowed or tool != "axolotl" else f"is null; expected {_types(allowed)}"
    if got in allowed or (got == "integer" and "number" in allowed):
        return _enum_problem(value, spec, shown)
    if got == "number" and "integer" in allowed and float(value).is_integer() and tool in CONVERTING:
        return None
    if got == "string" and tool in CONVERTING and (
            ({"integer", "number"} & allowed and _NUMBER.match(value.strip()))
            or ("boolean" in allowed and value.strip().lower() in _BOOL_WORDS)):
        return None
    if got == "string" and "array" in allowed and tool in ("trl", "llamafactory"):
        return None  # argparse nargs and split_arg take one string
    if got == "array" and "string" in allowed and tool in LIST_AS_STRING and all(isinstance(v, str) for v in value):
        return None
    if got == "integer" and "boolean" in allowed and value in (0, 1) and tool == "axolotl":
        return None
    if got == "boolean" and {"integer", "number"} & allowed:
        return None  # a bool is an int to Python, and to pydantic's lax mode
    return f"{shown} is {_article(got)}; expected {_types(allowed)}"


def _enum_problem(value: Any, spec: KeySpec, shown: str) -> str | None:
    if not (spec.enum or spec.patterns) or not isinstance(value, str):
        return None
    if value in spec.enum or any(re.search(p, value) for p in spec.patterns):
        return None
    if not any(isinstance(v, str) for v in spec.enum):
        return None
    choices = ", ".join(str(v) for v in spec.enum[:12]) + (", …" if len(spec.enum) > 12 else "")
    return f"{shown} is not one of the allowed values ({choices})"


def _enum_guess(value: Any, spec: KeySpec) -> str | None:
    if not isinstance(value, str) or not spec.enum:
        return None
    names = [v for v in spec.enum if isinstance(v, str)]
    lowered = {v.lower(): v for v in names}
    if value.lower() in lowered:
        return lowered[value.lower()]
    close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
    return close[0] if close else None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _article(kind: str) -> str:
    return {"array": "a list", "object": "a mapping", "integer": "an integer", "string": "a string",
            "number": "a number", "boolean": "a boolean"}.get(kind, kind)


def _types(allowed: frozenset[str]) -> str:
    return " or ".join(_article(t) for t in sorted(allowed - {"null"})) or "null"


# --------------------------------------------------------------------------- constraints


def get_path(data: Any, dotted_key: str) -> Any:
    node = data
    for part in dotted_key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def is_set(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {} and value is not False


def _same(value: Any, wanted: Any) -> bool:
    """Equal, with booleans never equal to 0/1."""
    return isinstance(value, bool) == isinstance(wanted, bool) and value == wanted


def _holds(data: Any, condition: Mapping[str, list[Any]]) -> bool:
    for key, values in condition.items():
        value = get_path(data, key)
        if "*" in values:
            if not is_set(value):
                return False
        elif not any(_same(value, v) for v in values):
            return False
    return True


def check_constraints(doc: Document, table: KeyTable) -> Iterator[Finding]:
    """The keys that need each other (``tools.json`` constraints), each finding quoting the tool's rule."""
    data = doc.data if isinstance(doc.data, dict) else {}
    for rule in table.info.get("constraints", ()):
        when = rule.get("when", {})
        if not _holds(data, when) or (rule.get("unless") and _holds(data, rule["unless"])):
            continue
        why = rule.get("why", "")
        cause = " and ".join(f"{k}: {_yaml(get_path(data, k))}" for k in when)
        needed = f"is required with {cause}" if cause else "is required"
        anchor = next(iter(when), None)
        for key in rule.get("require", ()):
            if not is_set(get_path(data, key)):
                state = "is empty; it " if get_path(data, key) is not None else ""
                yield _at(doc, MISSING_CONFIG_KEY, anchor or key, f"'{key}' {state}{needed}: {why}", key)
        for key in rule.get("require_true", ()):
            if get_path(data, key) is not True:
                yield _at(doc, MISSING_CONFIG_KEY, anchor or key, f"'{key}: true' {needed}: {why}", key)
        needs_any = rule.get("require_any", ())
        if needs_any and not any(is_set(get_path(data, k)) for k in needs_any):
            names = " or ".join(f"'{k}'" for k in needs_any)
            yield _at(doc, MISSING_CONFIG_KEY, anchor or needs_any[0], f"{names} {needed}: {why}", needs_any[0])
        for key in rule.get("forbid", ()):
            if is_set(get_path(data, key)):
                yield _at(doc, CONFLICTING_CONFIG_KEYS, key, f"'{key}' cannot be used with {cause}: {why}", key)
        if rule.get("deny"):
            yield _at(doc, CONFLICTING_CONFIG_KEYS, anchor or "", f"{cause} cannot go together: {why}", anchor or "")


def _yaml(value: Any) -> str:
    """A scalar as YAML writes it (``true``, ``lora``)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value)


def _at(doc: Document, rule: Any, where: str, message: str, key: str) -> Finding:
    path = tuple(where.split(".")) if where else ()
    return rule.finding(message, doc.location(path), line=doc.line_of(path), evidence={"key": key})  # type: ignore[no-any-return]
