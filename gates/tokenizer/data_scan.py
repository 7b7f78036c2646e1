"""The parallel data scan: every record of a training file encoded as training does, in a few fields.

:func:`scan_data` renders and encodes each record through
:func:`~sftgate.gates.tokenizer.label_building.encode_rendered` (in forked worker processes for large
files) and keeps what the prompt-alignment and EOS gates check (:class:`RecordScan`); the
last scan is memoised so both gates share one pass.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftgate.gates.tokenizer.end_of_turn import end_of_turn_ids
from sftgate.gates.tokenizer.label_building import encode_rendered, pad_id_for, truncate
from sftgate.gates.tokenizer.prompt_spec import PromptSpec, RenderError
from sftgate.gates.tokenizer.special_content import content_hits, hit_evidence
from sftgate.gates.tokenizer.template_rendering import Texts, render_texts
from sftgate.gates.tokenizer.token_encoding import double_bos, first_difference, token_strings

DETAIL_LIMIT = 50  # per-record details kept for reports (the counts cover every record)


@dataclass(frozen=True, slots=True)
class RecordScan:
    """What the tokenizer gates need to know about one training record, in a few fields."""

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
MAX_WORKERS = 8


def worker_count(path: str | Path, workers: int | None = None) -> int:
    """Processes for a scan: ``workers``, else ``SFTGATE_WORKERS``, else one per CPU (at most 8)
    for files of 4 MB or more; 1 where ``fork`` is not available or CUDA is initialised."""
    import multiprocessing
    import os
    import sys

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
                size = Path(path).stat().st_size if Path(path).is_file() else 0
            except OSError:
                size = 0
            if size < PARALLEL_MIN_BYTES:
                return 1
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            workers = min(cpus, MAX_WORKERS)
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

    ``max_records`` stops after the first N records of the file. Large files are scanned by
    :func:`worker_count` forked processes (rendering is pure Python); the result is the same.
    Memoised for the last file, so the prompt-alignment and EOS gates share one pass.
    """
    import time

    from sftgate.gates.readers.tokenizer_io import file_signature, iter_records

    key = (id(tokenizer), file_signature(path), spec, max_seq_len, max_records, display)
    cached = _SCANS.get(key)
    if cached is not None and cached[0]() is tokenizer:  # the same object, not a new one at a reused id
        return cached[1]
    start = time.perf_counter()
    scan = DataScan(source=display or str(path), pad_id=pad_id_for(tokenizer), eos_ids=tuple(end_of_turn_ids(tokenizer, spec)))
    stats: dict[str, int] = {}

    def chunks() -> Any:
        chunk: list[tuple[int, dict[str, Any]]] = []
        for seen, (line, record) in enumerate(iter_records(path, stats, display=display, progress=progress)):
            if max_records is not None and seen >= max_records:
                break
            chunk.append((line, record))
            if len(chunk) >= batch_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    n = scan.workers = worker_count(path, workers)
    parts = _scan_parallel(tokenizer, spec, max_seq_len, chunks(), n) if n > 1 else (
        _scan_chunk(tokenizer, spec, max_seq_len, chunk) for chunk in chunks()
    )
    for part in parts:
        scan.records.extend(part.records)
        scan.unrenderable += part.unrenderable
        scan.no_completion += part.no_completion
        room = DETAIL_LIMIT - len(scan.unrenderable_samples)
        scan.unrenderable_samples.extend(part.unrenderable_samples[:max(room, 0)])
        scan.no_completion_lines.extend(part.no_completion_lines[:max(DETAIL_LIMIT - len(scan.no_completion_lines), 0)])
        scan.special_content += part.special_content
        room = DETAIL_LIMIT - len(scan.special_content_samples)
        scan.special_content_samples.extend(part.special_content_samples[:max(room, 0)])
        for line, detail in part.details.items():
            if len(scan.details) < DETAIL_LIMIT:
                scan.details[line] = detail
    scan.skipped = stats.get("skipped", 0)
    scan.seconds = time.perf_counter() - start
    _SCANS.clear()
    with contextlib.suppress(TypeError):  # not weak-referenceable: no memo
        _SCANS[key] = (weakref.ref(tokenizer), scan)
    return scan


def _scan_chunk(
    tokenizer: Any, spec: PromptSpec, max_seq_len: int | None, chunk: list[tuple[int, dict[str, Any]]]
) -> DataScan:
    part = DataScan(source="", pad_id=pad_id_for(tokenizer))
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
    return part


_FORKED: tuple[Any, PromptSpec, int | None] | None = None  # what forked scan workers inherit


def _scan_forked(chunk: list[tuple[int, dict[str, Any]]]) -> DataScan:
    assert _FORKED is not None, "scan worker started without its tokenizer"
    tokenizer, spec, max_seq_len = _FORKED
    return _scan_chunk(tokenizer, spec, max_seq_len, chunk)


def _scan_parallel(tokenizer: Any, spec: PromptSpec, max_seq_len: int | None, chunks: Any, workers: int) -> Any:
    """Scan chunks in ``workers`` forked processes, in order. The workers inherit the tokenizer."""
    import multiprocessing
    import os

    global _FORKED
    _FORKED = (tokenizer, spec, max_seq_len)
    saved = os.environ.get("TOKENIZERS_PARALLELISM")
    # Each worker is one process of N: no Rust thread pool inside, and no fork warning from tokenizers.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            yield from pool.imap(_scan_forked, chunks)
    finally:
        _FORKED = None
        if saved is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = saved


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
