"""The header of a safetensors file: its tensors' dtypes, shapes and byte offsets, validated field by field.

Stdlib only (``struct`` and ``json``): a header is one small read, so a 15 GB shard costs
nothing. The artifacts gate reports a bad header as ``corrupt_artifact``; the embedding and
merge gates use the offsets to read single rows (:mod:`sftgate.gates.readers.safetensors_rows`).
This is the one parser of safetensors headers in sftgate.

The layout: 8 bytes little-endian header length ``n``, ``n`` bytes of JSON
(``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``), then the
data section, where each tensor's bytes sit at ``8 + n + begin`` .. ``8 + n + end``.

What is checked (as the safetensors library does on load, and a little more):

- the header length fits the file and the 100 MB cap; the JSON is one object starting with ``{``,
  with no duplicate keys and no nesting deeper than a header needs;
- ``__metadata__``, when present, maps strings to strings;
- at least one tensor; each entry an object with ``dtype`` (a known safetensors dtype),
  ``shape`` (a list of non-negative integers, booleans excluded) and ``data_offsets``
  (two non-negative integers, begin <= end);
- the byte span of each tensor equals its element count times its dtype width;
- the tensors tile the data section exactly: sorted by offset, each starts where the previous
  ended, the first at 0 and the last at the end of the file (no holes, no overlaps, no padding).

Example::

    tensors = read_safetensors_header("out/merged/model.safetensors")
    tensors["lm_head.weight"]["shape"]            # [32000, 4096]
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

MAX_HEADER = 100 * 1024 * 1024  # the safetensors library refuses larger headers too
MAX_DIMS = 64

# Bits per element of each safetensors dtype.
DTYPE_BITS: dict[str, int] = {
    "F64": 64, "I64": 64, "U64": 64, "C64": 64, "F32": 32, "I32": 32, "U32": 32,
    "F16": 16, "BF16": 16, "I16": 16, "U16": 16, "I8": 8, "U8": 8, "BOOL": 8,
    "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8, "F6_E2M3": 6, "F6_E3M2": 6, "F4": 4,
}
# Bytes per element (fractional for the sub-byte formats).
DTYPE_BYTES: dict[str, float] = {name: bits / 8 for name, bits in DTYPE_BITS.items()}


class CorruptSafetensors(ValueError):
    """A safetensors file whose header or layout is invalid; ``str()`` says what is wrong."""


def read_safetensors_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The tensors of a safetensors file, ``{name: {"dtype", "shape", "data_offsets"}}``.

    Reads only the header. Raises :class:`CorruptSafetensors` when the header length, JSON, dtypes,
    shapes or offsets do not describe the file exactly (truncated or padded data included).
    ``__metadata__`` is left out of the result.
    """
    return read_header_and_start(path)[0]


def read_header_and_start(path: str | os.PathLike[str]) -> tuple[dict[str, Any], int]:
    """:func:`read_safetensors_header` and the byte offset where the data section starts (``8 + n``)."""
    p = Path(path)
    size = p.stat().st_size
    with p.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise CorruptSafetensors(f"{size} bytes, shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or n > size - 8:
            raise CorruptSafetensors(f"header length {n} exceeds the file size {size}")
        raw = handle.read(n)
    return parse_header(raw, size - 8 - n), 8 + n


def parse_header(raw: bytes, data_len: int) -> dict[str, Any]:
    """Validate the JSON header bytes ``raw`` against a data section of ``data_len`` bytes; the tensors."""
    if not raw.lstrip(b" ").startswith(b"{"):
        raise CorruptSafetensors("header does not start with '{'")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptSafetensors(f"header is not JSON ({exc})") from None
    except RecursionError:
        raise CorruptSafetensors("header nests deeper than any safetensors header") from None
    if not isinstance(header, dict):
        raise CorruptSafetensors("header is not a JSON object")
    meta = header.get("__metadata__")
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise CorruptSafetensors("__metadata__ is not a mapping of strings to strings")
    tensors = {name: _tensor(name, info) for name, info in header.items() if name != "__metadata__"}
    if not tensors:
        raise CorruptSafetensors("the header names no tensors")
    position = 0
    for name, info in sorted(tensors.items(), key=lambda item: tuple(item[1]["data_offsets"])):
        begin, end = info["data_offsets"]
        if begin != position:
            what = "overlaps the previous tensor" if begin < position else f"leaves a gap of {begin - position} bytes"
            raise CorruptSafetensors(f"tensor {name!r} starts at byte {begin}: it {what}")
        position = end
    if position > data_len:
        raise CorruptSafetensors(
            f"tensors end at byte {position} of a {data_len}-byte data section (truncated file)")
    if position != data_len:
        raise CorruptSafetensors(f"tensors end at byte {position} but the data section has {data_len} bytes")
    return tensors


def _tensor(name: str, info: Any) -> dict[str, Any]:
    """One tensor entry, checked field by field."""
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
        raise CorruptSafetensors(f"tensor {name!r}: entry lacks dtype, shape or data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise CorruptSafetensors(f"tensor {name!r}: unknown dtype {str(dtype)[:40]!r}")
    if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(_count(d) for d in shape):
        raise CorruptSafetensors(f"tensor {name!r}: bad shape {str(shape)[:80]}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_count(o) for o in offsets) \
            or offsets[0] > offsets[1]:
        raise CorruptSafetensors(f"tensor {name!r}: bad data_offsets {str(offsets)[:80]}")
    elements = 1
    for d in shape:
        elements *= d
    bits = elements * DTYPE_BITS[dtype]
    if bits % 8:
        raise CorruptSafetensors(f"tensor {name!r}: {elements} {dtype} elements do not fill whole bytes")
    if bits // 8 != offsets[1] - offsets[0]:
        raise CorruptSafetensors(
            f"tensor {name!r}: {dtype} {shape} needs {bits // 8} bytes, offsets span {offsets[1] - offsets[0]}")
    return info


def _count(value: Any) -> bool:
    """A non-negative integer (``True`` and ``1.0`` are not)."""
    return type(value) is int and value >= 0


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise CorruptSafetensors(f"header repeats the key {key[:80]!r}")
        out[key] = value
    return out
