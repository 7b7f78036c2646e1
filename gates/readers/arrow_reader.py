"""Read the rows of a Parquet file or a ``datasets.Dataset.save_to_disk`` folder, in Arrow batches.

``pyarrow`` / ``datasets`` are imported only here, when such a file is read. A row's location is
its 1-based row number, and a ``null`` that Arrow stores for a key a record did not have is
dropped, so Arrow rows look like the JSON they came from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError

ARROW_BATCH = 4096


def iter_parquet(path: Path, display: str, counts: dict[str, int], make_bar: Callable[[], Any]
                 ) -> Iterator[tuple[int, Any]]:
    """``(row, record)`` of a Parquet file; ``make_bar()`` gives the progress bar (or None)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(
            f"{display}: reading Parquet needs pyarrow", hint="pip install 'sftgate[train]' (or pyarrow)"
        ) from None
    try:
        pf = pq.ParquetFile(str(path))
        batches = pf.iter_batches(batch_size=ARROW_BATCH)
        yield from _rows(batches, counts, make_bar)
    except (OSError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{display}: not a readable Parquet file ({exc})") from None


def iter_arrow_folder(path: Path, display: str, counts: dict[str, int], make_bar: Callable[[], Any]
                      ) -> Iterator[tuple[int, Any]]:
    """``(row, record)`` of a ``save_to_disk`` folder of one split; ``make_bar()`` gives the progress bar."""
    try:
        import datasets
    except ImportError:
        raise InputError(
            f"{display}: reading a save_to_disk folder needs `datasets`",
            hint="pip install 'sftgate[train]' (or datasets)",
        ) from None
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises many types for a folder it cannot read
        raise InputError(f"{display}: not a readable `save_to_disk` folder ({exc})") from None
    if isinstance(ds, datasets.DatasetDict):
        splits = ", ".join(ds)
        raise InputError(
            f"{display}: a DatasetDict folder (splits: {splits}); give one split's folder",
            hint=f"e.g. {display.rstrip('/')}/{next(iter(ds), 'train')}",
        )
    tables = ds.with_format("arrow").iter(batch_size=ARROW_BATCH)
    yield from _rows((t.to_batches() for t in tables), counts, make_bar)


def _rows(batches: Any, counts: dict[str, int], make_bar: Callable[[], Any]) -> Iterator[tuple[int, Any]]:
    """``(row, record)`` of Arrow record batches (or lists of them); the rows read go to ``counts``."""
    row = 0
    bar = make_bar()
    try:
        for batch in batches:
            for b in batch if isinstance(batch, list) else [batch]:
                for item in b.to_pylist():
                    row += 1
                    yield row, _drop_nulls(item)
                if bar is not None:
                    bar.update(b.num_rows)
    finally:
        counts["lines"] = row
        if bar is not None:
            bar.close()


def _drop_nulls(value: Any) -> Any:
    """Arrow stores a key a record did not have as null: drop those keys (recursively)."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value
