"""Turn what a trainer holds into :class:`~sftgate.gates.tokenizer.label_scan.TokenBatch` objects.

:func:`from_arrow`: a ``pyarrow.RecordBatch`` of list columns (a tokenized dataset), zero-copy
where Arrow allows. :func:`from_padded`: 2-D arrays of one collated batch (what a trainer's
dataloader yields: right-padded rows, or TRL's padding-free single row). Without a ``labels``
column the labels are built as TRL builds them: ``input_ids`` where ``assistant_masks`` and
``completion_mask`` are 1, else every token (:data:`LABEL_SOURCES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers.tokenized_io import ALIASES
from sftgate.gates.tokenizer.label_scan import IGNORE_INDEX, TokenBatch

LABEL_SOURCES = ("labels", "assistant_masks", "completion_mask", "input_ids")


def labels_source(columns: set[str] | Any) -> str:
    """Where the labels come from: the ``labels`` column, a mask column, or every input id."""
    names = {ALIASES.get(c, c) for c in columns}
    return next(s for s in LABEL_SOURCES if s in names or s == "input_ids")


def _list_column(column: Any, name: str, display: str, first_row: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, offsets) of a list column; InputError for nulls or a column that is not a list of ints."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_fixed_size_list(kind):
        values = column.flatten()
        offsets = np.arange(len(column) + 1, dtype=np.int64) * kind.list_size
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        values = column.flatten()
        offsets = column.offsets.to_numpy().astype(np.int64, copy=False)
        offsets = offsets - offsets[0]
    else:
        raise InputError(f"{display}: column {name!r} is {kind}, not a list of token ids per row",
                         hint="give the trainer's tokenized dataset (one list of ids per row)")
    if column.null_count:
        row = first_row + int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(f"{display}:{row}: {name} is null")
    if not (pa.types.is_integer(values.type) or pa.types.is_boolean(values.type)):
        raise InputError(f"{display}: column {name!r} holds {values.type}, not integer ids",
                         hint="a list of lists (pre-batched rows) is not supported: one example per row")
    if values.null_count:
        raise InputError(f"{display}: column {name!r} has null ids")
    return values.to_numpy(zero_copy_only=False).astype(np.int64, copy=False), offsets


def from_arrow(batch: Any, *, first_row: int, display: str) -> TokenBatch:
    """A :class:`TokenBatch` of a ``pyarrow.RecordBatch``; rows are numbered from ``first_row``."""
    columns: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    seq_lengths = None
    for name in batch.schema.names:
        key = ALIASES.get(name, name)
        if key == "seq_lengths":
            seq_lengths = _list_column(batch.column(name), name, display, first_row)
        elif key not in columns:
            columns[key] = _list_column(batch.column(name), name, display, first_row)
    offsets = columns["input_ids"][1]
    for name, (_, other) in columns.items():
        if name != "input_ids" and not np.array_equal(other, offsets):
            row = first_row + int(np.flatnonzero(np.diff(other) != np.diff(offsets))[0])
            raise InputError(f"{display}:{row}: {name} and input_ids have different lengths",
                             hint="every token column holds one value per input id")
    flat = {name: values for name, (values, _) in columns.items()}
    starts = None
    if seq_lengths is not None:
        starts = _seq_starts(seq_lengths, offsets, display, first_row)
    rows = np.arange(first_row, first_row + len(offsets) - 1, dtype=np.int64)
    return _batch(flat, offsets, starts, rows, separated=False)


def _seq_starts(seq: tuple[np.ndarray, np.ndarray], offsets: np.ndarray, display: str, first_row: int) -> np.ndarray:
    """Where each packed example starts (TRL's ``seq_lengths``: the lengths of a row's examples)."""
    values, seq_offsets = seq
    cum = np.concatenate([[0], np.cumsum(values)])
    sums = cum[seq_offsets[1:]] - cum[seq_offsets[:-1]]
    if len(sums) != len(offsets) - 1 or not np.array_equal(sums, np.diff(offsets)):
        bad = np.flatnonzero(sums != np.diff(offsets)) if len(sums) == len(offsets) - 1 else [0]
        raise InputError(f"{display}:{first_row + int(bad[0])}: seq_lengths do not add up to the row's length")
    row_of_seq = np.repeat(np.arange(len(sums)), np.diff(seq_offsets))
    begin = offsets[:-1][row_of_seq] + cum[:-1] - cum[seq_offsets[:-1]][row_of_seq]
    starts = np.zeros(int(offsets[-1]), dtype=bool)
    starts[begin[begin < len(starts)]] = True
    return starts


def _batch(flat: Mapping[str, np.ndarray], offsets: np.ndarray, seq_starts: np.ndarray | None, rows: np.ndarray | None,
           *, separated: bool) -> TokenBatch:
    ids = flat["input_ids"]
    labels = flat.get("labels")
    if labels is None:
        keep = np.ones(len(ids), dtype=bool)
        for mask in ("assistant_masks", "completion_mask"):
            if mask in flat:
                keep &= flat[mask] != 0
        labels = np.where(keep, ids, IGNORE_INDEX)
    return TokenBatch(
        input_ids=ids,
        offsets=offsets,
        labels=labels,
        attention_mask=flat.get("attention_mask"),
        position_ids=flat.get("position_ids"),
        completion_mask=flat.get("completion_mask"),
        seq_starts=seq_starts,
        separated=separated,
        rows=rows,
    )


def from_padded(arrays: Mapping[str, Any], *, first_row: int = 1) -> TokenBatch:
    """A :class:`TokenBatch` of one collated batch of 2-D arrays (``input_ids`` required).

    Rows are the batch rows; padding is read from ``attention_mask`` (or the pad id, by the scan).
    ``cu_seq_lens_q`` (TRL's padding-free batches) marks the examples as separated.
    """
    ids = np.asarray(arrays["input_ids"])
    if ids.ndim != 2:
        raise ValueError(f"input_ids of a batch must be 2-D, got shape {ids.shape}")
    n_rows, width = ids.shape
    flat: dict[str, np.ndarray] = {}
    for name in ("input_ids", "labels", "attention_mask", "position_ids", "completion_mask", "assistant_masks"):
        value = arrays.get(name)
        if value is None:
            continue
        value = np.asarray(value)
        if value.shape != ids.shape:  # a 4-D attention mask, say: it is not a per-token column
            continue
        flat[name] = value.reshape(-1).astype(np.int64, copy=False)
    offsets = np.arange(n_rows + 1, dtype=np.int64) * width
    rows = np.arange(first_row, first_row + n_rows, dtype=np.int64)
    return _batch(flat, offsets, None, rows, separated="cu_seq_lens_q" in arrays)
