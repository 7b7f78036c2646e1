"""Statistics of embedding rows read by offset: untrained rows, and whether two tensors hold the same rows.

A row is untrained when its L2 norm is at most ``min_norm_ratio`` times the median norm of rows
sampled evenly over the matrix (the reference), when it holds a NaN or an infinity, or when it is
bit-identical to another checked row (rows a resize initialised together: the mean, or zeros).
The sample is a few hundred rows: reading them costs kilobytes per row, never the matrix.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from sftgate.gates.readers.safetensors_rows import TensorRef, WeightFiles, sample_rows

SAMPLE_ROWS = 512
DEFAULT_MIN_NORM_RATIO = 0.1


@dataclass(frozen=True)
class RowVerdict:
    """One checked row: its norm, the reference median, and why it looks untrained (or None)."""

    token: int
    norm: float
    median: float
    reason: str | None
    twin: int | None = None  # another checked token with the identical row


def untrained_rows(
    weights: WeightFiles,
    ref: TensorRef,
    tokens: list[int],
    *,
    min_norm_ratio: float = DEFAULT_MIN_NORM_RATIO,
    sample: int = SAMPLE_ROWS,
) -> tuple[list[RowVerdict], float]:
    """The verdict on every row of ``tokens`` in ``ref``, and the reference median norm."""
    tokens = sorted({t for t in tokens if 0 <= t < ref.rows})
    reference = sample_rows(ref.rows, sample, exclude=tokens)
    ref_norms = [n for n in weights.row_norms(ref, reference) if n == n]
    median = statistics.median(ref_norms) if ref_norms else 0.0
    norms = weights.row_norms(ref, tokens)
    raw = weights.raw_rows(ref, tokens)
    first_with: dict[bytes, int] = {}
    twins: dict[int, int] = {}
    for token, row in zip(tokens, raw, strict=True):
        if row in first_with:
            twins[token] = first_with[row]
            twins.setdefault(first_with[row], token)
        else:
            first_with[row] = token
    verdicts = []
    for token, norm in zip(tokens, norms, strict=True):
        reason = None
        if norm != norm:
            reason = "NaN or infinite values"
        elif norm == 0.0:
            reason = "all zeros"
        elif median > 0 and norm <= min_norm_ratio * median:
            reason = f"norm {norm:.3g} is {norm / median:.1%} of the median {median:.3g}"
        elif token in twins:
            reason = "identical to another token's row (initialised together, never trained)"
        verdicts.append(RowVerdict(token, norm, median, reason, twins.get(token)))
    return verdicts, median


def rows_differ(weights: WeightFiles, a: TensorRef, b: TensorRef, tokens: list[int], *, sample: int = 64) -> list[int]:
    """Rows (sampled, plus ``tokens``) whose bytes differ between ``a`` and ``b`` of the same shape."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return [-1]
    rows = sorted(set(sample_rows(a.rows, sample)) | {t for t in tokens if 0 <= t < a.rows})
    return [r for r, x, y in zip(rows, weights.raw_rows(a, rows), weights.raw_rows(b, rows), strict=True) if x != y]
