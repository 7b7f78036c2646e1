"""A base model's context window from its config, and the token lengths of the training data.

The window is ``max_position_embeddings`` (or ``n_positions``...), stretched by RoPE scaling
(``rope_parameters`` / ``rope_scaling`` with a ``factor``: linear, dynamic, yarn, longrope,
llama3) to ``original_max_position_embeddings x factor`` when that is larger. A sliding window
limits attention only when every layer slides (``layer_types`` without a full-attention layer).

Lengths come from :class:`sftgate.gates.data.token_lengths.TokenCounter`: each record tokenized
as the trainer tokenizes it.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftgate.gates.tokenizer.model_facts import ModelFacts

SCALED_ROPE = ("linear", "dynamic", "yarn", "longrope", "llama3", "su")


@dataclass(frozen=True)
class Window:
    """How far the base model can look: its positions, and the sliding window when all layers slide."""

    positions: int | None
    trained_positions: int | None
    rope_type: str | None
    sliding: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"positions": self.positions, "trained_positions": self.trained_positions,
                "rope_type": self.rope_type, "sliding_window": self.sliding}


def window_of(facts: ModelFacts) -> Window:
    rope = facts.rope
    kind = rope.get("rope_type") or rope.get("type")
    positions = facts.max_positions
    factor = rope.get("factor")
    if positions is not None and kind in SCALED_ROPE and isinstance(factor, int | float) and factor > 1:
        original = rope.get("original_max_position_embeddings") or positions
        positions = max(positions, int(original * factor))
    sliding = facts.sliding_window
    if sliding is not None and any("full" in t or "global" in t for t in facts.layer_types):
        sliding = None  # global layers see everything (Gemma 2/3, Qwen 3 hybrids)
    if sliding is not None and positions is not None and sliding >= positions:
        sliding = None
    return Window(positions, facts.max_positions, str(kind) if kind else None, sliding)


@dataclass
class Lengths:
    """Token lengths of the training records, and those over a limit (line, tokens)."""

    lengths: array[int] = field(default_factory=lambda: array("I"))
    over: list[tuple[int, int]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.lengths)

    @property
    def longest(self) -> int:
        return max(self.lengths, default=0)

    def percentile(self, q: float) -> int:
        if not self.lengths:
            return 0
        ordered = sorted(self.lengths)
        return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def data_lengths(tokenizer: str | Path, data: str | Path, spec: Any, limit: int | None) -> Lengths:
    """Token lengths of every record of ``data`` and the records longer than ``limit``."""
    from sftgate.gates.data.token_lengths import TokenCounter
    from sftgate.gates.readers.tokenizer_io import iter_records

    counter = TokenCounter(tokenizer, prompt=spec, max_seq_len=limit)
    over: list[tuple[int, int]] = []
    for line, record in iter_records(data):
        over.extend(counter.add(record, line))
    over.extend(counter.flush())
    return Lengths(counter.lengths, [(line, n) for line, n in over if n >= 0])
