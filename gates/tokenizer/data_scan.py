"""The parallel data scan: every record of a training file encoded as training does, in a few fields.

:func:`scan_data` renders and encodes each record through
:func:`~sftgate.gates.tokenizer.label_building.encode_rendered` and keeps what the prompt-alignment
and EOS gates check (:class:`RecordScan`, a small tuple per record); the last scan is memoised so
both gates share one render and one tokenization of every record. A large JSONL file is scanned by
forked workers that each read their own byte range of it
(:func:`~sftgate.gates.readers.dataset_io.map_chunks`: no record crosses a process boundary, only
the tuples come back); :func:`worker_count` says how many.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from sftgate.gates.tokenizer.end_of_turn import end_of_turn_ids
from sftgate.gates.tokenizer.label_building import encode_rendered, pad_id_for, truncate
from sftgate.gates.tokenizer.prompt_spec import PromptSpec, RenderError
from sftgate.gates.tokenizer.render_limits import deadlines
from sftgate.gates.tokenizer.special_content import content_hits, hit_evidence
from sftgate.gates.tokenizer.template_rendering import Texts, render_texts
from sftgate.gates.tokenizer.token_encoding import double_bos, first_difference, token_strings

DETAIL_LIMIT = 50  # per-record details kept for reports (the counts cover every record)


class RecordScan(NamedTuple):
    """What the tokenizer gates need to know about one training record, in a few fields (a tuple: a
    record costs about 150 bytes, and workers send them back fast)."""

    line: int
    kind: str  # "messages" | "prompt_completion"
    has_system: bool
    length: int  # tokens after truncation
    full_length: int  # tokens before truncation
    prefix_diff: int | None  # first position where the prompt ids leave the training ids
    double_bos: bool
    truncated: bool
    ends_with_eos: bool
    final_token: int | None  # id of the last trained token
    eos_masked_mask_pad: bool  # EOS label is -100 after collate(..., mask_pad_labels=True)
    eos_masked_default: bool  # EOS label is -100 after collate(..., mask_pad_labels=False)


@dataclass
class DataScan:
    """Every record of a training file encoded through :func:`encode_rendered` and :func:`collate`."""

    source: str
    records: list[RecordScan] = field(default_factory=list)
    skipped: int = 0  # values that are not JSON objects (the dataset gate reports them)
    unrenderable: int = 0
    unrenderable_samples: list[tuple[int, str]] = field(default_factory=list)
    no_completion: int = 0
    no_completion_lines: list[int] = field(default_factory=list)
    special_content: int = 0  # records whose text holds a special token's string
    special_content_samples: list[tuple[int, list[dict[str, Any]]]] = field(default_factory=list)
    details: dict[int, dict[str, Any]] = field(default_factory=dict)  # line -> prompt_not_prefix detail
    pad_id: int = 0
    eos_ids: tuple[int, ...] = ()
    seconds: float = 0.0
    workers: int = 1

    def count(self, kind: str) -> int:
        return sum(1 for r in self.records if r.kind == kind)

    def absorb(self, part: DataScan) -> None:
        """Add a later part of the same file (a worker's chunk): its records, counts and capped details."""
        self.records.extend(part.records)
        self.skipped += part.skipped
        self.unrenderable += part.unrenderable
        self.no_completion += part.no_completion
        self.special_content += part.special_content
        for mine, theirs in ((self.unrenderable_samples, part.unrenderable_samples),
                             (self.no_completion_lines, part.no_completion_lines),
                             (self.special_content_samples, part.special_content_samples)):
            mine.extend(theirs[:max(DETAIL_LIMIT - len(mine), 0)])
        for line, detail in part.details.items():
            if len(self.details) < DETAIL_LIMIT:
                self.details[line] = detail

    def metrics(self) -> dict[str, Any]:
        """The scan's own figures, the same in every gate that reads it."""
        total = len(self.records)
        return {
            "records": total,
            "skipped_records": self.skipped + self.unrenderable + self.no_completion,
            "scan_seconds": round(self.seconds, 3),
            "scan_workers": self.workers,
            "records_per_second": round(total / self.seconds, 1) if self.seconds > 0 else None,
        }


_SCANS: dict[tuple[Any, ...], tuple[Any, DataScan]] = {}  # key -> (weakref to the tokenizer, scan)
PARALLEL_MIN_BYTES = 4 * 1024 * 1024  # smaller files are scanned in-process
BYTES_PER_WORKER = 2 * 1024 * 1024  # about 2,500 chat records, a second of work: each worker gets that at least


def worker_count(path: str | Path, workers: int | None = None) -> int:
    """Processes for a scan: ``workers``, else ``SFTGATE_WORKERS``, else
    :func:`~sftgate.gates.readers.dataset_io.default_workers` for a tokenizing scan (JSONL files of
    4 MB or more, one worker per free CPU and per 2 MB); 1 where ``fork`` is not available or CUDA
    is initialised in this process."""
    import multiprocessing
    import os
    import sys

    from sftgate.gates.readers.dataset_io import default_workers, open_dataset

    # No fork where it is unsafe: no fork start method, or CUDA already initialised in this process.
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if "fork" not in multiprocessing.get_all_start_methods() or (cuda is not None and cuda.is_initialized()):
        return 1
    if workers is None:
        env = os.environ.get("SFTGATE_WORKERS", "").strip()
        if env.isdigit():
            workers = int(env)
        else:
            try:
                source = open_dataset(path)
            except Exception:  # the scan itself reports a missing or unreadable file
                return 1
            workers = default_workers(source, min_bytes=PARALLEL_MIN_BYTES, bytes_per_worker=BYTES_PER_WORKER)
    return max(1, workers)


def scan_data(
    tokenizer: Any,
    path: str | Path,
    spec: PromptSpec,
    *,
    max_seq_len: int | None = None,
    max_records: int | None = None,
    display: str | None = None,
    batch_size: int = 256,
    progress: bool = False,
    workers: int | None = None,
) -> DataScan:
    """Encode every record of ``path`` as training does and collect what the gates check.

    ``max_records`` stops after the first N records of the file (in this process). Large files are
    scanned by :func:`worker_count` forked processes; the result is the same. Memoised for the last
    file, so the prompt-alignment and EOS gates share one pass.
    """
    import functools
    import time

    from sftgate.gates.readers.dataset_io import map_chunks, open_dataset
    from sftgate.gates.readers.tokenizer_io import file_signature

    key = (id(tokenizer), file_signature(path), spec, max_seq_len, max_records, display)
    cached = _SCANS.get(key)
    if cached is not None and cached[0]() is tokenizer:  # the same object, not a new one at a reused id
        return cached[1]
    start = time.perf_counter()
    scan = DataScan(source=display or str(path), pad_id=pad_id_for(tokenizer), eos_ids=tuple(end_of_turn_ids(tokenizer, spec)))
    source = open_dataset(path, display=display, progress=progress)
    n = scan.workers = 1 if max_records is not None else worker_count(path, workers)
    task = functools.partial(_scan_records, tokenizer, spec, max_seq_len, batch_size, max_records)
    if source.kind != "jsonl":
        n = scan.workers = 1  # only JSONL files are cut into byte ranges
    if n > 1:
        warm_up(tokenizer, spec)  # built once here, inherited by every worker
    for part in map_chunks(source, task, workers=n):
        scan.absorb(part)
    scan.seconds = time.perf_counter() - start
    _SCANS.clear()
    with contextlib.suppress(TypeError):  # not weak-referenceable: no memo
        _SCANS[key] = (weakref.ref(tokenizer), scan)
    return scan


def warm_up(tokenizer: Any, spec: PromptSpec) -> None:
    """Build the tokenizer's fast renderer and encoder before workers fork, so that they inherit them."""
    probe = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}
    with contextlib.suppress(Exception):  # an unrenderable probe: each record reports its own error
        encode_rendered(tokenizer, [render_texts(tokenizer, probe, spec)], spec)


def _scan_records(tokenizer: Any, spec: PromptSpec, max_seq_len: int | None, batch_size: int,
                  max_records: int | None, source: Any, values: Any) -> DataScan:
    """Scan ``(line, value)`` pairs of a file (or of a worker's chunk), ``batch_size`` records at a time."""
    part = DataScan(source="", pad_id=pad_id_for(tokenizer))
    chunk: list[tuple[int, dict[str, Any]]] = []
    seen = 0
    with deadlines():  # one render timer for the whole loop (render_limits)
        for line, value in values:
            if type(value) is not dict:  # not a JSON object: the dataset gate reports it
                part.skipped += 1
                continue
            if max_records is not None and seen >= max_records:
                break
            seen += 1
            chunk.append((line, value))
            if len(chunk) >= batch_size:
                _scan_chunk(tokenizer, spec, max_seq_len, chunk, part)
                chunk = []
        if chunk:
            _scan_chunk(tokenizer, spec, max_seq_len, chunk, part)
    return part


def _scan_chunk(
    tokenizer: Any, spec: PromptSpec, max_seq_len: int | None, chunk: list[tuple[int, dict[str, Any]]], part: DataScan
) -> None:
    batch: list[tuple[int, str, Texts]] = []
    for line, record in chunk:
        try:
            texts = render_texts(tokenizer, record, spec)
        except RenderError as exc:
            part.unrenderable += 1
            if len(part.unrenderable_samples) < DETAIL_LIMIT:
                part.unrenderable_samples.append((line, str(exc)))
            continue
        if texts.full is None:
            part.no_completion += 1
            if len(part.no_completion_lines) < DETAIL_LIMIT:
                part.no_completion_lines.append(line)
            continue
        if not spec.split_special_tokens:  # split: content strings are tokenized as text
            hits = content_hits(tokenizer, record)
            if hits:
                part.special_content += 1
                if len(part.special_content_samples) < DETAIL_LIMIT:
                    part.special_content_samples.append((line, [hit_evidence(h) for h in hits]))
        batch.append((line, "prompt_completion" if texts.add_special_tokens else "messages", texts))
    if batch:
        _scan_batch(tokenizer, batch, spec, max_seq_len, part)


def _scan_batch(
    tokenizer: Any, batch: list[tuple[int, str, Texts]], spec: PromptSpec, max_seq_len: int | None, scan: DataScan
) -> None:
    bos_id = getattr(tokenizer, "bos_token_id", None)
    encoded = encode_rendered(tokenizer, [t for _, _, t in batch], spec, max_seq_len=None)
    for (line, kind, texts), (prompt_ids, full) in zip(batch, encoded, strict=True):
        enc = truncate(full, max_seq_len) if max_seq_len is not None else full
        diff = first_difference(prompt_ids, full.input_ids)
        if diff is not None and len(scan.details) < DETAIL_LIMIT:
            scan.details[line] = prefix_detail(tokenizer, prompt_ids, full.input_ids, diff)
        ends = enc.ends_with_eos
        last = enc.last_supervised
        masked_pad = masked_default = False
        if ends and last is not None:
            # What collate([enc], pad_id, mask_pad_labels=...)["labels"][0][last] gives (a trained
            # label, so never -100 by itself): mask_pad masks it when it equals the pad id; the
            # default collator keeps every real label. tests/gates/test_rendering.py checks both.
            masked_pad = enc.labels[last] == scan.pad_id
            masked_default = False
        # Every earlier trained assistant turn must end in a trained EOS too (train.turns: all).
        eos = set(enc.eos_ids)
        for turn_last in enc.turn_ends():
            if turn_last is None:
                continue
            if enc.input_ids[turn_last] not in eos:
                ends, last = False, turn_last
                break
            masked_pad = masked_pad or enc.labels[turn_last] == scan.pad_id
        scan.records.append(RecordScan(
            line=line,
            kind=kind,
            has_system=texts.has_system,
            length=len(enc.input_ids),
            full_length=len(full.input_ids),
            prefix_diff=diff,
            double_bos=double_bos(prompt_ids, bos_id) or double_bos(full.input_ids, bos_id),
            truncated=enc.truncated,
            ends_with_eos=ends,
            final_token=None if last is None else enc.input_ids[last],
            eos_masked_mask_pad=masked_pad,
            eos_masked_default=masked_default,
        ))


def prefix_detail(tokenizer: Any, prompt_ids: Sequence[int], full_ids: Sequence[int], position: int, context: int = 4) -> dict[str, Any]:
    """Evidence for ``prompt_not_prefix``: the position and a few tokens of both sides around it."""
    lo = max(0, position - context)
    return {
        "position": position,
        "prompt_tokens": token_strings(tokenizer, prompt_ids[lo:position + context]),
        "training_tokens": token_strings(tokenizer, full_ids[lo:position + context]),
        "prompt_ids": list(prompt_ids[lo:position + context]),
        "training_ids": list(full_ids[lo:position + context]),
        "from": lo,
    }
