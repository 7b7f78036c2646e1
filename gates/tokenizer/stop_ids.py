"""The stop ids generation will use, and rule ``eos_not_in_stop_ids`` of gate ``eos``.

``generate()`` stops on ``generation_config.eos_token_id``. When ``generation_config.json`` has no
``eos_token_id`` (or there is no such file), transformers falls back to the model config's
``eos_token_id``, else the tokenizer's EOS: :func:`served_stop_ids` returns the ids and says which
of those it used, so a finding names what was used instead of citing a key that is not there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, Rule, Severity
from sftgate.gates.readers import tokenizer_io
from sftgate.gates.tokenizer.token_encoding import token_strings

GENERATION_CONFIG = tokenizer_io.GENERATION_CONFIG

EOS_NOT_IN_STOP_IDS = Rule(
    "EOS005", "eos_not_in_stop_ids", Severity.ERROR, "eos",
    "generation_config.eos_token_id lacks the end-of-turn token the template trains",
    "generate() stops only on generation_config.eos_token_id. If the template ends turns with "
    "<|eot_id|> but the stop ids only hold <|end_of_text|>, the model emits <|eot_id|> and keeps going.",
    "List every end-of-turn token in generation_config.json, e.g. \"eos_token_id\": [128001, 128009].",
    '"eos_token_id": 128001   # Llama 3 instruct also needs 128009 (<|eot_id|>)',
)


@dataclass(frozen=True)
class StopIds:
    """The stop ids generation uses and where they came from."""

    ids: list[int]
    used: str  # "generation_config.json", "config.json", "the tokenizer's eos_token" or "nothing"
    file: Path | None  # the generation config file, when there is one
    location: str  # where to fix them: generation_config.json's eos_token_id


def served_stop_ids(tok: Any, folder: Path, generation_config: str | Path | None) -> StopIds:
    """What ``generate()`` stops on: generation_config.json, else config.json, else the tokenizer's EOS."""
    where = Path(generation_config) if generation_config is not None else tokenizer_io.generation_config_path(folder)
    location = f"{where if where is not None else folder / GENERATION_CONFIG}:eos_token_id"
    ids = tokenizer_io.generation_eos_ids(where) if where is not None else None
    if ids is not None:
        return StopIds(ids, GENERATION_CONFIG, where, location)
    config_json = folder / "config.json"
    if config_json.is_file():
        value = tokenizer_io.read_json_file(config_json)
        eos = value.get("eos_token_id") if isinstance(value, dict) else None
        if isinstance(eos, int | list):
            return StopIds([eos] if isinstance(eos, int) else list(eos), "config.json", where, location)
    if isinstance(getattr(tok, "eos_token_id", None), int):
        return StopIds([tok.eos_token_id], "the tokenizer's eos_token", where, location)
    return StopIds([], "nothing", where, location)


def stop_id_findings(
    tok: Any, folder: Path, generation_config: str | Path | None, final_tokens: list[int], metrics: dict[str, Any]
) -> Iterator[Finding]:
    """``eos_not_in_stop_ids`` when a token that ends trained turns is not a stop id."""
    if not final_tokens:
        return
    stop = served_stop_ids(tok, folder, generation_config)
    metrics["stop_ids"] = stop.ids if stop.used != "nothing" else None
    metrics["stop_ids_from"] = stop.used
    metrics["trained_end_tokens"] = token_strings(tok, final_tokens)
    missing = [t for t in final_tokens if t not in stop.ids]
    if not missing:
        return
    names = token_strings(tok, missing)
    fixed = list(dict.fromkeys([*stop.ids, *missing]))
    if stop.used == GENERATION_CONFIG:
        source = f"generation stops on {stop.ids}"
    else:
        lacks = f"{stop.file.name} has no eos_token_id" if stop.file is not None else f"there is no {GENERATION_CONFIG}"
        source = f"{lacks}, so generation stops on {stop.used}: {stop.ids}"
    yield EOS_NOT_IN_STOP_IDS.finding(
        f"{source} ({', '.join(repr(t) for t in token_strings(tok, stop.ids)) or 'nothing'}) "
        f"but training ends turns with {', '.join(repr(n) for n in names)} (id {', '.join(map(str, missing))})",
        stop.location,
        suggestion=f'"eos_token_id": {fixed}',
        evidence={"stop_ids": stop.ids, "stop_ids_from": stop.used, "missing_ids": missing, "missing_tokens": names,
                  "file_found": stop.file is not None},
    )
