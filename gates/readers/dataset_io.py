"""Stream the records of a dataset file: JSONL line by line, Parquet and ``save_to_disk`` folders.

Reading never crashes on bad data. A JSONL line that is not valid UTF-8 or not valid JSON comes
out as a :class:`~sftgate.gates.readers.jsonl_reader.ReadIssue` in place of the value, with its
line number, so a gate reports it and goes on; blank lines, a byte order mark at the start and
CRLF line endings are tolerated and counted (:attr:`DatasetSource.counts`). Only a file that
cannot be read at all raises :class:`~sftgate.gates.frame.core.InputError` (exit 2).

::

    source = open_dataset("train.jsonl")
    for line, value in source:            # line: 1-based line (JSONL) or row number
        if type(value) is ReadIssue:      # invalid UTF-8 / JSON: report it, keep going
            ...

JSONL (and a ``.json`` file holding one JSON array of records; location: the element number) is
decoded by :mod:`sftgate.gates.readers.jsonl_reader`; Parquet files and
``datasets.Dataset.save_to_disk`` folders are read in Arrow batches by
:mod:`sftgate.gates.readers.arrow_reader` (location: the 1-based row number). Large JSONL files
are read by worker processes (:func:`map_chunks`).
"""

from __future__ import annotations

import functools
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers.arrow_reader import iter_arrow_folder, iter_parquet
from sftgate.gates.readers.jsonl_reader import BOM, line_chunks, read_json_array, read_lines
from sftgate.gates.readers.textfile import os_problem, regular_path

__all__ = ["DatasetSource", "open_dataset"]

PROGRESS_MIN_BYTES = 16 * 1024 * 1024  # a progress bar only for files at least this large


@dataclass
class DatasetSource:
    """One dataset file or folder; iterate it for ``(line, value)`` pairs (see the module doc)."""

    path: Path
    display: str
    kind: str  # "jsonl" | "json" | "parquet" | "arrow"
    progress: Any = False  # True (a bar on stderr), a stream for the bar, or False
    counts: dict[str, int] = field(default_factory=dict)
    blank_lines: list[int] = field(default_factory=list)  # the first 20 blank lines

    @property
    def size(self) -> int:
        try:
            if self.path.is_dir():
                return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
            return self.path.stat().st_size
        except OSError:
            return 0

    @property
    def line_based(self) -> bool:
        """Whether locations are file lines (JSONL) rather than row or element numbers."""
        return self.kind == "jsonl"

    def location(self, line: int) -> str:
        return f"{self.display}:{line}"

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        self.counts = {"lines": 0, "blank_lines": 0, "crlf_lines": 0, "bom": 0}
        self.blank_lines = []
        if self.kind == "jsonl":
            return self._iter_jsonl()
        if self.kind == "json":
            return self._iter_json_array()
        if self.kind == "parquet":
            return self._iter_parquet()
        return self._iter_arrow_folder()

    # ------------------------------------------------------------------ JSONL

    def _iter_jsonl(self) -> Iterator[tuple[int, Any]]:
        return self.iter_range(0, None, 1)

    def iter_range(self, start: int, end: int | None, first_line: int) -> Iterator[tuple[int, Any]]:
        """``(line, value)`` of the JSONL lines that start in bytes ``[start, end)``.

        ``start`` is the offset of a line start, ``first_line`` that line's number; a worker
        process reads its chunk of a large file this way (see :func:`map_chunks`).
        """
        counts = self.counts
        for key in ("lines", "blank_lines", "crlf_lines", "bom"):
            counts.setdefault(key, 0)
        bar = _progress_bar(self) if start == 0 and end is None else None
        try:
            with _open_binary(self) as fh:
                yield from read_lines(fh, start, end, first_line, counts, self.blank_lines, bar)
        except OSError as exc:
            raise InputError(f"{self.display}: cannot read ({exc.strerror or exc})") from None
        finally:
            if bar is not None:
                bar.close()

    def chunks(self, n: int) -> list[tuple[int, int | None, int]]:
        """Split a JSONL file into about ``n`` ``(start, end, first line)`` byte ranges on line starts."""
        size = self.size
        if self.kind != "jsonl" or n <= 1 or size == 0:
            return [(0, None, 1)]
        with _open_binary(self) as fh:
            return line_chunks(fh, size, n)

    # ------------------------------------------------------------------ JSON array and Arrow

    def _iter_json_array(self) -> Iterator[tuple[int, Any]]:
        yield from enumerate(read_json_array(self.path, self.display, self.counts), 1)

    def _iter_parquet(self) -> Iterator[tuple[int, Any]]:
        yield from iter_parquet(self.path, self.display, self.counts,
                                functools.partial(_progress_bar, self, rows=True))

    def _iter_arrow_folder(self) -> Iterator[tuple[int, Any]]:
        yield from iter_arrow_folder(self.path, self.display, self.counts,
                                     functools.partial(_progress_bar, self, rows=True))


def open_dataset(path: str | Path, *, display: str | None = None, progress: Any = False) -> DatasetSource:
    """A :class:`DatasetSource` for ``path``; InputError when it is missing or of an unknown kind.

    ``progress``: a tqdm bar for large files, on stderr (``True``) or on the given stream.
    """
    p = Path(path)
    shown = display or str(path)
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        raise os_problem(exc, shown, "a dataset file") from None
    if stat.S_ISDIR(mode):
        if (p / "dataset_dict.json").is_file() or (p / "state.json").is_file() or any(p.glob("*.arrow")):
            return DatasetSource(p, shown, "arrow", progress)
        parquet = sorted(p.glob("*.parquet"))
        hint = f"give the file itself, e.g. {parquet[0]}" if parquet else "give a .jsonl or .parquet file"
        raise InputError(f"{shown}: is a folder but not a `datasets` save_to_disk folder", hint=hint)
    suffix = p.suffix.lower()
    p = regular_path(p, display=shown, expected="a dataset file")  # a FIFO or device: a bounded copy
    if suffix in (".parquet", ".pq"):
        return DatasetSource(p, shown, "parquet", progress)
    if suffix == ".json" and _starts_with_array(p):
        return DatasetSource(p, shown, "json", progress)
    if suffix in (".gz", ".zst", ".bz2", ".xz", ".zip"):
        raise InputError(f"{shown}: compressed files are not read", hint=f"decompress it first, e.g. `gunzip -k {shown}`")
    return DatasetSource(p, shown, "jsonl", progress)


# --------------------------------------------------------------------------- helpers


def _starts_with_array(p: Path) -> bool:
    try:
        with p.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return head.removeprefix(BOM).lstrip().startswith(b"[")


def _open_binary(source: DatasetSource) -> Any:
    try:
        return source.path.open("rb")
    except PermissionError:
        raise InputError(f"{source.display}: permission denied", hint="check the file's permissions") from None
    except OSError as exc:
        raise InputError(f"{source.display}: cannot open ({exc.strerror or exc})") from None


def _progress_bar(source: DatasetSource, *, rows: bool = False) -> Any:
    if not source.progress:
        return None
    size = source.size
    if size < PROGRESS_MIN_BYTES:
        return None
    from tqdm import tqdm

    stream = sys.stderr if source.progress is True else source.progress
    if rows:
        return tqdm(desc=source.path.name, unit=" rows", file=stream, leave=False)
    return tqdm(total=size, desc=source.path.name, unit="B", unit_scale=True, file=stream, leave=False)


# --------------------------------------------------------------------------- worker processes

PARALLEL_MIN_BYTES = 32 * 1024 * 1024  # smaller files are read in one process
BYTES_PER_WORKER = 32 * 1024 * 1024  # each worker of the plain checks gets at least this much of the file
CHUNKS_PER_WORKER = 4
MAX_WORKERS = 8
_TASK: Any = None  # set before the pool forks: the workers inherit it (and whatever it closes over)


def default_workers(source: DatasetSource, *, min_bytes: int = PARALLEL_MIN_BYTES,
                    bytes_per_worker: int = BYTES_PER_WORKER) -> int:
    """Worker processes for ``source``: 1 unless it is a JSONL file of ``min_bytes`` or more, else one
    per :func:`free_cpus` (at most 8), and no more than one per ``bytes_per_worker`` of the file.

    The sizes are where the forked workers measured faster than one process (``benchmarks/bench_data.py``
    and ``bench_tokenizer.py`` print both side by side): below them the fork, the split and the
    merge cost more than they save. A busy machine gets fewer workers: an extra process on a core
    that is already taken only slows the others down.
    """
    if source.kind != "jsonl" or not _can_fork():
        return 1
    size = source.size
    if size < min_bytes:
        return 1
    from sftgate.gates.readers.worker_count import free_cpus

    return max(1, min(free_cpus(), MAX_WORKERS, size // max(bytes_per_worker, 1)))


def _can_fork() -> bool:
    import multiprocessing as mp

    return sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods()


def _ignore_interrupt() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_task(job: tuple[Any, ...]) -> Any:
    import gc

    gc.disable()  # the per-record work makes no reference cycles; collections only cost time
    source, start, end, first_line = job
    return _TASK(source, source.iter_range(start, end, first_line)), dict(source.counts), list(source.blank_lines)


def map_chunks(source: DatasetSource, task: Any, *, workers: int = 1) -> Iterator[Any]:
    """``task(source, records)`` over chunks of ``source``, in file order; in worker processes when
    ``workers > 1`` (forked, so ``task`` may use anything built before the call).

    Each result is yielded as soon as it and the ones before it are done; the counts of the
    reader (blank lines, CRLF, BOM) are summed into ``source.counts``.
    """
    global _TASK
    jobs = source.chunks(workers * CHUNKS_PER_WORKER) if workers > 1 else [(0, None, 1)]
    totals = {"lines": 0, "blank_lines": 0, "crlf_lines": 0, "bom": 0}
    blanks: list[int] = []
    if len(jobs) == 1:
        result = task(source, iter(source))
        source.counts = {**totals, **source.counts}
        yield result
        return
    import gc
    import multiprocessing as mp
    import os

    _TASK = task
    gc.freeze()  # what exists now is shared with the workers: no collection there copies its pages
    # One worker per CPU already: a tokenizer's own thread pool per worker only oversubscribes (and
    # tokenizers warns at every fork once its pool ran); the workers inherit this, the caller gets its own back.
    parallelism = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        bar = _progress_bar(source)
        ctx = mp.get_context("fork")
        # Ctrl-C is the parent's to handle (exit 130, quietly): workers ignore SIGINT and are terminated.
        with ctx.Pool(min(workers, len(jobs)), initializer=_ignore_interrupt) as pool:
            for (start, end, _), (result, counts, blank) in zip(
                jobs, pool.imap(_run_task, [(source, *job) for job in jobs]), strict=True
            ):
                for key in totals:
                    totals[key] += counts.get(key, 0)
                blanks.extend(blank[: 20 - len(blanks)])
                if bar is not None:
                    bar.update((end if end is not None else source.size) - start)
                yield result
        if bar is not None:
            bar.close()
    finally:
        gc.unfreeze()
        _TASK = None
        source.counts = totals
        if parallelism is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = parallelism
        source.blank_lines = blanks
