"""Decode JSON Lines (and a ``.json`` array of records) into values, never crashing on bad data.

:func:`read_lines` turns the lines of an open binary file into ``(line, value)`` pairs; a line
that is not valid UTF-8 or not valid JSON comes out as a :class:`ReadIssue` in place of the value
(with the reason ``json`` gives). :func:`line_chunks` cuts a file into byte ranges on line starts for
worker processes. :class:`~sftgate.gates.readers.dataset_io.DatasetSource` drives them.

JSONL is parsed with ``orjson`` (about twice as fast as ``json``; a line ``orjson`` rejects is
re-checked with ``json`` so that the report names the problem precisely; like ``orjson``, integers
beyond 64 bits come out as floats, which no check here depends on).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers.textfile import read_bytes

BOM = b"\xef\xbb\xbf"
SNIPPET = 80
MAX_RECORD_BYTES = 8 * 1024 * 1024  # one JSONL record; a longer line is a ReadIssue, skipped unread


@dataclass(frozen=True, slots=True)
class ReadIssue:
    """A record that could not be decoded: ``kind`` is ``invalid_utf8``, ``invalid_json`` or
    ``too_large`` (over :data:`MAX_RECORD_BYTES`, so memory stays bounded by one record)."""

    kind: str
    detail: str
    snippet: str
    column: int | None = None


def read_lines(fh: BinaryIO, start: int, end: int | None, first_line: int, counts: dict[str, int],
               blanks: list[int], bar: Any) -> Iterator[tuple[int, Any]]:
    """``(line, value)`` of the JSONL lines of ``fh`` that start in bytes ``[start, end)``.

    ``start`` is the offset of a line start, ``first_line`` that line's number. Blank lines are
    skipped and counted (the first 20 listed in ``blanks``), with the CRLF lines and a leading BOM,
    into ``counts``; ``bar`` (or None) is a tqdm bar advanced by the bytes read.
    """
    import orjson

    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    crlf = 0
    lineno = first_line - 1
    try:
        fh.seek(start)
        if start == 0:
            head = fh.read(3)
            if head == BOM:
                counts["bom"] = 1
            else:
                fh.seek(0)
        pos = last_pos = fh.tell()
        readline = fh.readline
        limit = MAX_RECORD_BYTES + 1
        while raw := readline(limit):
            if end is not None:
                if pos >= end:
                    break
                pos += len(raw)
            lineno += 1
            if len(raw) == limit and not raw.endswith(b"\n"):  # one record larger than the bound
                skipped = _skip_line(fh)
                pos += skipped
                yield lineno, _too_large(raw, len(raw) + skipped)
                continue
            try:
                value = loads(raw)
            except decode_error:
                if not raw.strip():
                    counts["blank_lines"] += 1
                    if len(blanks) < 20:
                        blanks.append(lineno)
                    continue
                value = _classify(raw)
            if raw[-2:] == b"\r\n":
                crlf += 1
            yield lineno, value
            if bar is not None and not lineno & 0x3FFF:
                now = fh.tell()
                bar.update(now - last_pos)
                last_pos = now
    finally:
        counts["lines"] = lineno - first_line + 1
        counts["crlf_lines"] = crlf


def _skip_line(fh: BinaryIO) -> int:
    """Read past the rest of the current line without keeping it; the bytes skipped."""
    skipped = 0
    while chunk := fh.readline(1 << 20):
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return skipped


def _too_large(head: bytes, size: int) -> ReadIssue:
    return ReadIssue("too_large", f"a record of {size} bytes, over the {MAX_RECORD_BYTES >> 20} MiB bound "
                     "(split it, or drop it: no training example is that long)", _snippet(head[:SNIPPET * 4]))


def line_chunks(fh: BinaryIO, size: int, n: int) -> list[tuple[int, int | None, int]]:
    """Split the ``size`` bytes of ``fh`` into about ``n`` ``(start, end, first line)`` ranges on line starts.

    Buffered reads only (1 MiB at a time), never a memory map: a mapped file's pages would count as
    this process's resident memory, once per process that maps it.
    """
    bounds = [0]
    for k in range(1, n):
        cut = _next_line_start(fh, max(bounds[-1], size * k // n))
        if cut is None or cut >= size:
            break
        if cut > bounds[-1]:
            bounds.append(cut)
    first = [1]
    for a, b in itertools.pairwise(bounds):
        first.append(first[-1] + _count_newlines(fh, a, b))
    ends: list[int | None] = [*bounds[1:], None]
    return list(zip(bounds, ends, first, strict=True))


def _next_line_start(fh: BinaryIO, pos: int) -> int | None:
    """The offset just after the first newline at or after ``pos`` (``None``: none)."""
    fh.seek(pos)
    while block := fh.read(1 << 16):
        at = block.find(b"\n")
        if at >= 0:
            return pos + at + 1
        pos += len(block)
    return None


def _count_newlines(fh: BinaryIO, start: int, end: int) -> int:
    fh.seek(start)
    count, left = 0, end - start
    while left > 0 and (block := fh.read(min(1 << 20, left))):
        count += block.count(b"\n")
        left -= len(block)
    return count


def read_json_array(path: Path, display: str, counts: dict[str, int]) -> list[Any]:
    """The records of a ``.json`` file holding one JSON array; InputError when it is anything else."""
    import orjson

    data = read_bytes(path, display=display)
    if data.startswith(BOM):
        counts["bom"] = 1
        data = data[len(BOM):]
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        issue = _classify(data)
        raise InputError(
            f"{display}: not a valid JSON array of records ({issue.detail})",
            hint="fix the JSON, or write one record per line as JSON Lines (.jsonl)",
        ) from None
    if not isinstance(value, list):
        raise InputError(
            f"{display}: a .json dataset must be an array of records, found {type(value).__name__}",
            hint="write one record per line as JSON Lines (.jsonl), or wrap the records in [ ]",
        )
    counts["lines"] = len(value)
    return value


def _snippet(raw: bytes | str, limit: int = SNIPPET) -> str:
    text = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw
    text = text.rstrip("\r\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _classify(raw: bytes) -> ReadIssue:
    """Why ``orjson`` rejected ``raw``: invalid UTF-8, or invalid JSON with ``json``'s message."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 4]
        return ReadIssue(
            "invalid_utf8",
            f"invalid UTF-8 at byte {exc.start + 1} ({bad!r}): {exc.reason}",
            _snippet(raw),
            column=exc.start + 1,
        )
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return ReadIssue("invalid_json", f"{exc.msg} at column {exc.colno}", _snippet(text), column=exc.colno)
    except RecursionError:
        return ReadIssue("invalid_json", "nested too deeply", _snippet(text))
    # ``json`` accepts what ``orjson`` (rightly) refuses: NaN/Infinity, lone surrogates, huge numbers.
    stripped = text.strip()
    for token in ("NaN", "Infinity"):
        if token in stripped:
            return ReadIssue("invalid_json", f"{token} is not valid JSON", _snippet(text))
    if "\\ud" in stripped.lower():
        return ReadIssue("invalid_json", "a lone UTF-16 surrogate escape (\\udXXX) is not valid Unicode", _snippet(text))
    return ReadIssue("invalid_json", "a number out of range, or not valid JSON", _snippet(text))
