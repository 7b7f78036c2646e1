"""Turn markers, and the role region they give each token of tokenized rows (numpy, vectorised).

A chat template writes a header before each message (``<|im_start|>user\\n``, ``[INST]``,
``<|start_header_id|>assistant<|end_header_id|>\\n\\n``, ``<start_of_turn>model\\n``...). Given the
header ids of each role (:class:`TurnMarkers`, learned by
:mod:`~sftgate.gates.tokenizer.turn_markers`), :func:`classify` gives every token of a flat batch
of rows its region: the header or the text of an assistant turn, the header or the text of a
system/user/tool turn, the part of an example before its first header, or unknown (an example
without any header: plain prompt/completion text). No tokenizer here: ids only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ASSISTANT = "assistant"

# Region codes (int8), one per token.
PREFIX = 0  # before the first header of an example (BOS, a preamble)
ASSISTANT_HEADER = 1
ASSISTANT_TEXT = 2  # an assistant turn's text, its end-of-turn token and what follows up to the next header
PROMPT_HEADER = 3  # the header of a system, user or tool turn
PROMPT_TEXT = 4
UNKNOWN = 5  # an example in which no header occurs


@dataclass(frozen=True)
class TurnMarkers:
    """What a chat template writes around turns, as token ids.

    ``headers``: ``(role, ids)`` per role (``assistant`` among them) when they could be learned;
    ``end_of_turn``: the tokens that close an assistant turn (the template's, plus EOS);
    ``after_end``: tokens the template writes after an end-of-turn token (ChatML's newline);
    ``bos_id``: a token that starts every example and nothing else (BOS written once);
    ``eos_id``: a token that ends a whole example, never a turn inside one, so tokens after it
    begin another example (EOS appended to plain completions); ``problem``: why no roles.
    """

    headers: tuple[tuple[str, tuple[int, ...]], ...] = ()
    end_of_turn: tuple[int, ...] = ()
    after_end: tuple[int, ...] = ()
    bos_id: int | None = None
    eos_id: int | None = None
    problem: str | None = None

    @property
    def has_roles(self) -> bool:
        return self.problem is None and any(role == ASSISTANT for role, _ in self.headers)

    def describe(self) -> dict[str, list[int]]:
        """``{role: header ids}`` for reports."""
        return {role: list(ids) for role, ids in self.headers}


def find_sequence(ids: np.ndarray, seq: tuple[int, ...], row_of: np.ndarray) -> np.ndarray:
    """Start positions of ``seq`` in the flat ``ids``, never across two rows (``row_of`` per token)."""
    k = len(seq)
    n = len(ids)
    if k == 0 or n < k:
        return np.zeros(0, dtype=np.int64)
    cand = np.flatnonzero(ids[: n - k + 1] == seq[0])
    for j in range(1, k):
        if not len(cand):
            break
        cand = cand[ids[cand + j] == seq[j]]
    if k > 1 and len(cand):
        cand = cand[row_of[cand] == row_of[cand + k - 1]]
    return cand


def classify(ids: np.ndarray, starts: np.ndarray, row_of: np.ndarray, markers: TurnMarkers) -> np.ndarray:
    """The region code of every token of ``ids``; ``starts`` (bool) marks where an example begins.

    Each token takes the region of the last mark at or before it: an example start (PREFIX), a
    header's first token (its header code) or the token after a header (its text code). Tokens of
    an example without any header are UNKNOWN.
    """
    n = len(ids)
    region = np.full(n, UNKNOWN, dtype=np.int8)
    if n == 0 or not markers.has_roles:
        return region
    code = np.zeros(n, dtype=np.int8)
    mark = np.zeros(n, dtype=bool)
    header_starts: list[tuple[np.ndarray, int]] = []
    for role, seq in markers.headers:
        found = find_sequence(ids, seq, row_of)
        if not len(found):
            continue
        is_assistant = role == ASSISTANT
        after = found + len(seq)
        after = after[after < n]
        mark[after] = True
        code[after] = ASSISTANT_TEXT if is_assistant else PROMPT_TEXT
        header_starts.append((found, ASSISTANT_HEADER if is_assistant else PROMPT_HEADER))
    if not header_starts:
        return region
    mark[starts] = True
    code[starts] = PREFIX
    for found, header_code in header_starts:
        mark[found] = True
        code[found] = header_code
    last = np.maximum.accumulate(np.where(mark, np.arange(n), 0))
    region = code[last]
    # Examples with no header at all: unknown, not "before the first header".
    example = np.cumsum(starts) - 1
    has_header = np.zeros(int(example[-1]) + 1, dtype=bool)
    for found, _ in header_starts:
        has_header[example[found]] = True
    region[~has_header[example]] = UNKNOWN
    return region
