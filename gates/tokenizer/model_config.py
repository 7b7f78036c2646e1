"""Gate ``model-config``: the base's config files hold up through training, saving and long examples.

No weights are read: ``config.json`` and ``generation_config.json`` of the base model (and the
tokenizer folder's ``generation_config.json``, the one that is served), and the token lengths
of the training data.

- ``invalid_generation_config``: a ``generation_config.json`` that ``save_pretrained`` refuses,
  validated by the installed transformers' ``GenerationConfig.validate(strict=True)``: found in
  preflight, not when the trainer or the merge saves it after the GPU hour;
- ``beyond_context_window``: ``train.max_seq_len``, or training examples that truncation does not
  cut, longer than the base's context window (``max_position_embeddings`` stretched by RoPE
  scaling); a warning when sequences outgrow a sliding window that every layer uses.

This gate is separate from ``embeddings`` because it reads only config files and data lengths,
never a weight, and applies to any model folder.

::

    sftgate check sftgate.yaml      # model.id (config.json, generation_config.json), data.train, train.max_seq_len
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, GateSkipped, Rule, Severity
from sftgate.gates.tokenizer.context_window import Window, data_lengths, window_of
from sftgate.gates.tokenizer.generation_validity import generation_config_problems
from sftgate.gates.tokenizer.model_facts import ModelFacts
from sftgate.gates.tokenizer.prompt_spec import PromptSpec, spec_from_config

GATE = "model-config"
GENERATION_CONFIG = "generation_config.json"

INVALID_GENERATION_CONFIG = Rule(
    "MCF001", "invalid_generation_config", Severity.ERROR, GATE,
    "a generation_config.json that transformers' save_pretrained refuses (validated strictly, as at save time)",
    "save_pretrained validates a changed generation config strictly and raises on any issue: do_sample "
    "false (or unset) with temperature or top_p set loads with a warning, then crashes the save at the end "
    "of training or in the merge, after the GPU hour (transformers #29988, LlamaFactory #2479).",
    "Make the file consistent: \"do_sample\": true when sampling was meant, else remove temperature / top_p "
    "/ top_k; the suggestion names the key.",
    'generation_config.json: {"do_sample": false, "temperature": 0.6, "top_p": 0.9}',
)
BEYOND_CONTEXT_WINDOW = Rule(
    "MCF002", "beyond_context_window", Severity.ERROR, GATE,
    "train.max_seq_len or training examples longer than the base's context window (or its sliding window)",
    "Positions past max_position_embeddings were never trained: RoPE models extrapolate badly and models "
    "with learned positions index out of range. RoPE scaling (rope_scaling / rope_parameters) stretches "
    "the window; a sliding window that every layer uses means tokens further back are not attended.",
    "Set train.max_seq_len to at most the window (the suggestion), split or drop the long examples, or "
    "start from a base with a longer (or RoPE-scaled) context.",
    "train.max_seq_len: 8192 on a base with max_position_embeddings 4096",
)

RULES = (INVALID_GENERATION_CONFIG, BEYOND_CONTEXT_WINDOW)


def from_config(config: Any) -> dict[str, Any] | None:
    """Kwargs for :func:`check`; GateSkipped when neither the base's config.json nor a
    generation_config.json is available offline."""
    from sftgate.gates.frame.core import GateSkipped as Skip
    from sftgate.gates.readers import tokenizer_io
    from sftgate.gates.readers.model_files import model_config_dir_from_config

    model_dir = model_config_dir_from_config(config)
    try:
        tokenizer = tokenizer_io.tokenizer_dir_from_config(config)
    except Skip:
        tokenizer = None
    files = [f for f in (model_dir, tokenizer) if f is not None and (Path(f) / GENERATION_CONFIG).is_file()]
    generation = list(dict.fromkeys((Path(f) / GENERATION_CONFIG).resolve() for f in files))
    if model_dir is None and not generation:
        raise GateSkipped(
            f"no config.json or generation_config.json offline for '{config.get('model.id')}' "
            f"(download them: `hf download {config.get('model.id')} config.json generation_config.json`)"
        )
    return {
        "model_dir": model_dir,
        "generation_configs": generation,
        "tokenizer": tokenizer,
        "data": config.require_file("data.train"),
        "spec": spec_from_config(config),
        "max_seq_len": config.get("train.max_seq_len"),
        "max_seq_len_location": config.location("train.max_seq_len"),
    }


def check(
    *,
    model_dir: str | Path | None = None,
    generation_configs: list[str | Path] | tuple[str | Path, ...] = (),
    tokenizer: str | Path | None = None,
    data: str | Path | None = None,
    spec: PromptSpec | None = None,
    max_seq_len: int | None = None,
    max_seq_len_location: str = "train.max_seq_len",
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Validate the generation configs (default: ``model_dir``'s) and the lengths against the window."""
    metrics = metrics if metrics is not None else {}
    files = [Path(f) for f in generation_configs]
    if not files and model_dir is not None and (Path(model_dir) / GENERATION_CONFIG).is_file():
        files = [Path(model_dir) / GENERATION_CONFIG]
    metrics["generation_configs"] = [str(f) for f in files]
    for file in files:
        yield from generation_findings(file)
    if model_dir is None:
        return
    window = window_of(ModelFacts.read(model_dir))
    metrics["window"] = window.as_dict()
    if window.positions is None:
        metrics["window_unknown"] = "config.json names no max_position_embeddings"
        return
    lengths = None
    if data is not None and tokenizer is not None:
        lengths = data_lengths(tokenizer, data, spec or PromptSpec(), window.positions)
        metrics.update(examples=lengths.count, p95_tokens=lengths.percentile(0.95), max_tokens=lengths.longest)
    yield from _window_findings(window, max_seq_len, max_seq_len_location, lengths, data)


def generation_findings(file: Path) -> Iterator[Finding]:
    """``invalid_generation_config`` for each problem transformers' strict validation finds in ``file``."""
    for problem in generation_config_problems(file):
        key = problem.attribute
        yield INVALID_GENERATION_CONFIG.finding(
            f"{file.name}: {problem.message}" + ("" if key is None else " (save_pretrained refuses this file)"),
            f"{file}:{key}" if key else (f"{file}:{problem.line}" if problem.line else str(file)),
            suggestion=problem.suggestion, line=problem.line,
            evidence={"attribute": key, "file": str(file)},
        )


def _window_findings(window: Window, max_seq_len: int | None, where: str, lengths: Any,
                     data: str | Path | None) -> Iterator[Finding]:
    limit = window.positions
    assert limit is not None
    scaled = f" (RoPE {window.rope_type} from {window.trained_positions})" if limit != window.trained_positions else ""
    cut = max_seq_len is not None and max_seq_len <= limit  # truncation keeps every sequence in the window
    over = [] if lengths is None or cut else lengths.over
    stats = {} if lengths is None else {"examples": lengths.count, "p95_tokens": lengths.percentile(0.95),
                                        "max_tokens": lengths.longest}
    if over:
        share = len(over) / max(lengths.count, 1)
        limit_text = "train.max_seq_len is not set" if max_seq_len is None else f"train.max_seq_len is {max_seq_len}"
        yield BEYOND_CONTEXT_WINDOW.finding(
            f"{len(over)} of {lengths.count} examples ({share:.1%}) are longer than the base's context window of "
            f"{limit} tokens{scaled} and {limit_text} (p95 {lengths.percentile(0.95)}, longest {lengths.longest})",
            f"{data}:{over[0][0]}", suggestion=f"train.max_seq_len: {limit}",
            evidence={**stats, "window": limit, "count": len(over),
                      "samples": [{"line": line, "tokens": n} for line, n in over[:20]]},
        )
    elif max_seq_len is not None and max_seq_len > limit:
        fits = lengths is not None and lengths.longest <= limit
        yield BEYOND_CONTEXT_WINDOW.finding(
            f"train.max_seq_len {max_seq_len} is longer than the base's context window of {limit} tokens{scaled}"
            + (f"; no example reaches it today (longest {lengths.longest})" if fits else ""),
            where, suggestion=f"train.max_seq_len: {limit}",
            severity=Severity.WARNING if fits else None, evidence={**stats, "window": limit, "max_seq_len": max_seq_len},
        )
    if window.sliding is None:
        return
    longest = lengths.longest if lengths is not None else None
    reach = min(x for x in (max_seq_len, longest) if x is not None) if (max_seq_len or longest) else None
    if reach is not None and reach > window.sliding:
        yield BEYOND_CONTEXT_WINDOW.finding(
            f"sequences of up to {reach} tokens on a model whose every layer attends only to the last "
            f"{window.sliding} tokens (sliding_window): earlier tokens are not seen",
            where if max_seq_len is not None else f"{data}",
            severity=Severity.WARNING, suggestion=f"train.max_seq_len: {window.sliding}",
            evidence={**stats, "sliding_window": window.sliding, "tokens": reach},
        )
