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


def _same_row(first: np.ndarray, last: np.ndarray, row_starts: np.ndarray) -> np.ndarray:
    return np.searchsorted(row_starts, first, "right") == np.searchsorted(row_starts, last, "right")


def find_sequence(ids: np.ndarray, seq: tuple[int, ...], row_starts: np.ndarray,
                  candidates: np.ndarray | None = None) -> np.ndarray:
    """Start positions of ``seq`` in the flat ``ids``, never across two rows (``row_starts``: sorted).

    ``candidates``: sorted positions known to hold every occurrence of ``seq[0]`` (saves a pass)."""
    k = len(seq)
    n = len(ids)
    if k == 0 or n < k:
        return np.zeros(0, dtype=np.int64)
    if candidates is None:
        cand = np.flatnonzero(ids[: n - k + 1] == seq[0])
    else:
        cand = candidates[(ids[candidates] == seq[0]) & (candidates <= n - k)]
    for j in range(1, k):
        if not len(cand):
            break
        cand = cand[ids[cand + j] == seq[j]]
    if k > 1 and len(cand):
        cand = cand[_same_row(cand, cand + k - 1, row_starts)]
    return cand


def region_marks(ids: np.ndarray, starts: np.ndarray, row_starts: np.ndarray, markers: TurnMarkers,
                 candidates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The regions as runs: ``(positions, codes)``, each code holding from its position to the next.

    ``starts`` are the sorted flat positions where examples begin (the first is 0). Marks: an
    example start (PREFIX), a header's first token (its header code), the token after a header
    (its text code); at one position a header beats a start, which beats a text mark. Examples in
    which no header occurs are UNKNOWN throughout. ``candidates``: see :func:`find_sequence`.
    """
    n = len(ids)
    if n == 0 or not markers.has_roles:
        return np.zeros(1, dtype=np.int64), np.full(1, UNKNOWN, dtype=np.int8)
    positions, codes, ranks = [starts], [np.full(len(starts), PREFIX, dtype=np.int8)], [np.ones(len(starts), np.int8)]
    headers = []
    for role, seq in markers.headers:
        found = find_sequence(ids, seq, row_starts, candidates)
        if not len(found):
            continue
        text, head = (ASSISTANT_TEXT, ASSISTANT_HEADER) if role == ASSISTANT else (PROMPT_TEXT, PROMPT_HEADER)
        after = found + len(seq)
        after = after[after < n]
        positions += [after, found]
        codes += [np.full(len(after), text, np.int8), np.full(len(found), head, np.int8)]
        ranks += [np.zeros(len(after), np.int8), np.full(len(found), 2, np.int8)]
        headers.append(found)
    pos, code, rank = np.concatenate(positions), np.concatenate(codes), np.concatenate(ranks)
    order = np.lexsort((rank, pos))
    pos, code = pos[order], code[order]
    last = np.r_[pos[1:] != pos[:-1], True]
    pos, code = pos[last], code[last]
    example = np.searchsorted(starts, pos, "right") - 1
    has_header = np.zeros(len(starts), dtype=bool)
    if headers:
        has_header[np.searchsorted(starts, np.concatenate(headers), "right") - 1] = True
    return pos, np.where(has_header[example], code, UNKNOWN).astype(np.int8)


def expand(positions: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """One value per token from runs (``positions[0]`` is 0)."""
    return np.repeat(values, np.diff(np.r_[positions, n]))


def classify(ids: np.ndarray, starts: np.ndarray, row_starts: np.ndarray, markers: TurnMarkers) -> np.ndarray:
    """The region code of every token of ``ids`` (see :func:`region_marks`)."""
    positions, codes = region_marks(ids, starts, row_starts, markers)
    return expand(positions, codes, len(ids))


def assistant_spans(ids: list[int], markers: TurnMarkers) -> tuple[tuple[int, int], ...] | None:
    """``[start, end)`` of each assistant turn's text in one row, or ``None`` when roles are unknown."""
    flat = np.asarray(ids, dtype=np.int64)
    if not markers.has_roles or not len(flat):
        return None
    zero = np.zeros(1, dtype=np.int64)
    region = classify(flat, zero, zero, markers)
    if (region == UNKNOWN).all():
        return None
    inside = np.concatenate([[False], region == ASSISTANT_TEXT, [False]])
    edges = np.flatnonzero(inside[1:] != inside[:-1])
    return tuple((int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True))
