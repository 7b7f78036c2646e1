"""sftgate.gates.readers.dataset_io: streaming records with their lines, never crashing on bad bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers.dataset_io import map_chunks, open_dataset
from sftgate.gates.readers.jsonl_reader import ReadIssue

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "data"
RECORDS = [{"prompt": f"question {i}", "completion": f"answer {i}"} for i in range(6)]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _items(path: Path) -> list[tuple[int, object]]:
    return list(open_dataset(path))


@pytest.mark.parametrize(
    ("data", "expected", "reason"),
    [
        (b'{"a": 1}\n{"a": 2}\n', [(1, {"a": 1}), (2, {"a": 2})], "one record per line"),
        (b'{"a": 1}\n\n  \n{"a": 2}', [(1, {"a": 1}), (4, {"a": 2})], "blank lines skipped, numbering kept, no final newline"),
        (b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n', [(1, {"a": 1}), (2, {"a": 2})], "a BOM at the start is tolerated"),
        (b'{"a": 1}\r\n{"a": 2}\r\n', [(1, {"a": 1}), (2, {"a": 2})], "CRLF endings are tolerated"),
        (b"", [], "an empty file has no records"),
    ],
)
def test_jsonl_lines(tmp_path: Path, data: bytes, expected: list[tuple[int, object]], reason: str) -> None:
    assert _items(_write(tmp_path / "d.jsonl", data)) == expected, reason


@pytest.mark.parametrize(
    ("line", "kind", "reason"),
    [
        (b'{"a": ', "invalid_json", "cut off"),
        (b"{'a': 1}", "invalid_json", "single quotes"),
        (b'{"a": NaN}', "invalid_json", "NaN is not JSON"),
        (b'{"a": "\\ud800"}', "invalid_json", "a lone surrogate is not Unicode"),
        (b'{"a": "caf\xe9"}', "invalid_utf8", "latin-1 bytes"),
        (b"\xff\xfe{}", "invalid_utf8", "UTF-16 BOM bytes"),
    ],
)
def test_bad_lines_are_issues_not_crashes(tmp_path: Path, line: bytes, kind: str, reason: str) -> None:
    items = _items(_write(tmp_path / "d.jsonl", b'{"ok": 1}\n' + line + b'\n{"ok": 2}\n'))
    assert [n for n, _ in items] == [1, 2, 3], reason
    issue = items[1][1]
    assert isinstance(issue, ReadIssue) and issue.kind == kind, reason


def test_counts_blank_crlf_bom(tmp_path: Path) -> None:
    source = open_dataset(_write(tmp_path / "d.jsonl", b'\xef\xbb\xbf{"a": 1}\r\n\r\n{"a": 2}\r\n\n'))
    list(source)
    assert source.counts == {"lines": 4, "blank_lines": 2, "crlf_lines": 2, "bom": 1}
    assert source.blank_lines == [2, 4]


@pytest.mark.parametrize(
    ("name", "reason"),
    [("missing.jsonl", "a missing file"), ("data.jsonl.gz", "a compressed file")],
)
def test_input_errors(tmp_path: Path, name: str, reason: str) -> None:
    if name.endswith(".gz"):
        (tmp_path / name).write_bytes(b"\x1f\x8b")
    with pytest.raises(InputError):
        open_dataset(tmp_path / name)


def test_folder_that_is_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        open_dataset(tmp_path)


def test_json_array_file(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps(RECORDS[:2], indent=2))
    source = open_dataset(path)
    assert source.kind == "json" and not source.line_based
    assert list(source) == [(1, RECORDS[0]), (2, RECORDS[1])]


def test_parquet_rows(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [{"prompt": "p1", "completion": "c1"}, {"prompt": "p2"}]  # the second has no completion
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    source = open_dataset(tmp_path / "d.parquet")
    assert list(source) == [(1, rows[0]), (2, rows[1])], "Arrow's null for a missing key is dropped"


def test_save_to_disk_folder(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    msgs = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}]
    datasets.Dataset.from_list(RECORDS[:3]).save_to_disk(str(tmp_path / "ds"))
    assert list(open_dataset(tmp_path / "ds")) == list(enumerate(RECORDS[:3], 1))
    datasets.Dataset.from_list(msgs * 2).save_to_disk(str(tmp_path / "chat"))
    assert list(open_dataset(tmp_path / "chat")) == [(1, msgs[0]), (2, msgs[0])]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(RECORDS)}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(InputError):
        list(open_dataset(tmp_path / "dd"))


def _counting_task(source, records):  # type: ignore[no-untyped-def]
    return [(line, value if not isinstance(value, ReadIssue) else value.kind) for line, value in records]


def test_chunks_cover_the_file_in_order(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in RECORDS * 50] + ["", "{bad"]
    path = _write(tmp_path / "d.jsonl", ("\n".join(lines) + "\n").encode())
    source = open_dataset(path)
    whole = _counting_task(source, iter(source))
    for n in (2, 3, 7, 40):
        parts = [_counting_task(source, source.iter_range(a, b, first)) for a, b, first in source.chunks(n)]
        assert [x for part in parts for x in part] == whole, f"{n} chunks"


def test_map_chunks_in_worker_processes(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in RECORDS * 100]
    lines[10] = ""
    path = _write(tmp_path / "d.jsonl", ("\r\n".join(lines) + "\r\n").encode())
    one = open_dataset(path)
    single = [x for part in map_chunks(one, _counting_task, workers=1) for x in part]
    many = open_dataset(path)
    parallel = [x for part in map_chunks(many, _counting_task, workers=2) for x in part]
    assert parallel == single
    assert many.counts == one.counts and many.counts["blank_lines"] == 1
    assert many.blank_lines == one.blank_lines == [11]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_random_bytes_never_crash(tmp_path: Path, data: bytes) -> None:
    path = _write(tmp_path / "r.jsonl", data)
    items = _items(path)
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    non_blank = [i for i, line in enumerate(body.split(b"\n"), 1) if line.strip()]
    assert [n for n, _ in items] == non_blank


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8),
                                       max_size=3),
                       max_size=12), n=st.integers(1, 6))
def test_chunked_reading_equals_whole(tmp_path: Path, values: list[dict], n: int) -> None:
    path = _write(tmp_path / "h.jsonl", "".join(json.dumps(v) + "\n" for v in values).encode())
    source = open_dataset(path)
    whole = list(source)
    parts = [item for a, b, first in source.chunks(n) for item in source.iter_range(a, b, first)]
    assert parts == whole == list(enumerate(values, 1))
