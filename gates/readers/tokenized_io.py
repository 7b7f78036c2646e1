"""Read tokenized training data (what trainers write after preprocessing) in Arrow batches.

Accepted: a ``datasets`` ``save_to_disk`` folder (axolotl's ``dataset_prepared_path``,
LLaMA-Factory's ``tokenized_path``; a ``DatasetDict`` folder gives its ``train`` split, or the one
named), a folder holding exactly one such folder, Parquet, an Arrow IPC file or stream, and JSONL.
Columns: ``input_ids`` (required), ``labels``, ``attention_mask``, ``position_ids``,
``completion_mask`` / ``assistant_masks`` (TRL's names) and ``seq_lengths`` (TRL's packing), each a
list per row. Batches are read one at a time (files are not memory-mapped), so memory stays
constant over millions of rows. pyarrow is imported only here.

:func:`open_tokenized` checks the path and the columns up front (exit 2 with the fix when they are
wrong); iterating the :class:`TokenizedSource` gives ``pyarrow.RecordBatch`` objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers.textfile import PATH_HINT

TOKEN_COLUMNS = ("input_ids", "labels", "attention_mask", "position_ids", "completion_mask", "assistant_masks")
COLUMNS = (*TOKEN_COLUMNS, "seq_lengths")
PARQUET_BATCH = 8192
JSON_BLOCK = 8 << 20
ALIASES = {"assistant_mask": "assistant_masks", "loss_mask": "completion_mask"}  # other trainers' names


@dataclass
class TokenizedSource:
    """Tokenized rows in Arrow batches; ``columns`` are the ones read (``input_ids`` first)."""

    path: Path
    display: str
    kind: str  # "arrow-folder" | "parquet" | "arrow" | "jsonl"
    files: list[Path] = field(default_factory=list)
    columns: tuple[str, ...] = ()
    split: str | None = None

    def __iter__(self) -> Iterator[Any]:
        try:
            for path in self.files:
                yield from _batches(self.kind, path, self.columns)
        except InputError:
            raise
        except Exception as exc:  # pyarrow raises many types for a file it cannot read
            raise InputError(f"{self.display}: cannot read the tokenized data: {type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:300]}") from None


def open_tokenized(path: str | Path, *, split: str | None = None, display: str | None = None) -> TokenizedSource:
    """Find the data files and columns of ``path``; InputError (exit 2) when it is not tokenized data."""
    p = Path(path)
    shown = display or str(path)
    if not p.exists():
        raise InputError(f"{shown}: no such file or folder", hint=PATH_HINT)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise InputError(f"{shown}: reading tokenized data needs pyarrow", hint="pip install 'sftgate[train]'") from None
    if p.is_dir():
        source = _folder(p, shown, split)
    else:
        suffix = p.suffix.lower()
        kind = {".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow",
                ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}.get(suffix)
        if kind is None:
            raise InputError(f"{shown}: unknown data file type {suffix or '(none)'!r}",
                             hint="give a save_to_disk folder, .parquet, .arrow or .jsonl")
        if kind == "jsonl" and _starts_with_array(p):
            raise InputError(f"{shown}: a JSON array; tokenized data must be one JSON object per line",
                             hint="convert with: jq -c '.[]' FILE > FILE.jsonl")
        source = TokenizedSource(p, shown, kind, [p])
    names = _column_names(source)
    present = [c for c in COLUMNS if c in names] + [a for a in ALIASES if a in names]
    if "input_ids" not in names:
        found = ", ".join(sorted(names)[:12]) or "none"
        hint = ("this is text data: give the trainer's tokenized output (`axolotl preprocess`, LLaMA-Factory's "
                "tokenized_path), or check the text with `sftgate tokenizer DIR --data FILE`")
        raise InputError(f"{shown}: no input_ids column (columns: {found})", hint=hint)
    source.columns = tuple(present)
    return source


def _starts_with_array(p: Path) -> bool:
    with p.open("rb") as handle:
        head = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"[")


def _folder(p: Path, shown: str, split: str | None) -> TokenizedSource:
    if (p / "dataset_dict.json").is_file():
        splits = _json(p / "dataset_dict.json", shown).get("splits") or []
        chosen = split or ("train" if "train" in splits else splits[0] if len(splits) == 1 else None)
        if chosen is None or chosen not in splits:
            raise InputError(f"{shown}: a DatasetDict folder with splits {', '.join(splits) or 'none'}",
                             hint="name one with --split SPLIT")
        inner = _folder(p / chosen, f"{shown.rstrip('/')}/{chosen}", None)
        inner.split = chosen
        return inner
    if split is not None:
        raise InputError(f"{shown}: --split {split} given, but this is not a DatasetDict folder")
    if (p / "state.json").is_file():
        state = _json(p / "state.json", shown)
        files = [p / f["filename"] for f in state.get("_data_files") or [] if isinstance(f, dict) and "filename" in f]
        missing = [f.name for f in files if not f.is_file()]
        if not files or missing:
            raise InputError(f"{shown}: state.json names no data files or missing ones ({', '.join(missing[:3])})",
                             hint="the folder must be written by Dataset.save_to_disk")
        return TokenizedSource(p, shown, "arrow-folder", files)
    children = sorted(c for c in p.iterdir() if c.is_dir() and ((c / "state.json").is_file() or (c / "dataset_dict.json").is_file()))
    if len(children) == 1:  # axolotl: dataset_prepared_path/<hash>/
        return _folder(children[0], f"{shown.rstrip('/')}/{children[0].name}", split)
    parquet = sorted(p.glob("*.parquet"))
    if parquet:
        return TokenizedSource(p, shown, "parquet", parquet)
    if children:
        raise InputError(f"{shown}: holds several datasets ({', '.join(c.name for c in children[:5])})",
                         hint="pass one of them")
    raise InputError(f"{shown}: a folder but not a datasets.save_to_disk folder (no state.json or dataset_dict.json)",
                     hint="pass the folder written by Dataset.save_to_disk, or a .parquet/.arrow/.jsonl file")


def _json(path: Path, shown: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{shown}: cannot read {path.name} ({exc})") from None
    return value if isinstance(value, dict) else {}


def _column_names(source: TokenizedSource) -> set[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = source.files[0]
    try:
        if source.kind == "parquet":
            return set(pq.ParquetFile(str(first)).schema_arrow.names)
        if source.kind in ("arrow", "arrow-folder"):
            with pa.OSFile(str(first)) as handle:
                return set(_ipc_reader(handle).schema.names)
        batch = next(_json_batches(first, None), None)
        return set(batch.schema.names) if batch is not None else set()
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{source.display}: not readable as {source.kind} ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:200]})") from None


def _ipc_reader(handle: Any) -> Any:
    import pyarrow as pa

    try:
        return pa.ipc.open_stream(handle)
    except pa.ArrowInvalid:
        handle.seek(0)
        return _FileBatches(pa.ipc.open_file(handle))


class _FileBatches:
    """An Arrow IPC *file* reader, iterable like a stream reader."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.schema = reader.schema

    def __iter__(self) -> Iterator[Any]:
        for i in range(self.reader.num_record_batches):
            yield self.reader.get_batch(i)


def _batches(kind: str, path: Path, columns: tuple[str, ...]) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if kind == "parquet":
        yield from pq.ParquetFile(str(path)).iter_batches(batch_size=PARQUET_BATCH, columns=list(columns))
    elif kind == "jsonl":
        yield from _json_batches(path, columns)
    else:
        with pa.OSFile(str(path)) as handle:
            for batch in _ipc_reader(handle):
                yield batch.select(list(columns))


def _json_batches(path: Path, columns: tuple[str, ...] | None) -> Iterator[Any]:
    import pyarrow.json as pj

    reader = pj.open_json(str(path), read_options=pj.ReadOptions(block_size=JSON_BLOCK))
    for batch in reader:
        yield batch.select([c for c in columns if c in batch.schema.names]) if columns else batch
