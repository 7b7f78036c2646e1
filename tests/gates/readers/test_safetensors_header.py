"""The safetensors header, validated field by field: what the library refuses, and a little more.

The safetensors library is the oracle: every file it writes parses here with the same tensors,
and every header this parser accepts, the library loads too.
"""

from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.merge import artifacts
from sftgate.gates.readers.safetensors_header import DTYPE_BITS, CorruptSafetensors, read_safetensors_header
from tests.conftest import FIXTURES

F32_2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


def write(path: Path, header: object, data: bytes = b"", *, raw: bytes | None = None) -> Path:
    body = raw if raw is not None else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + data)
    return path


BAD_HEADERS = [
    # (header, data bytes, reason)
    ({"__metadata__": {"format": "pt"}}, b"", "only __metadata__: no tensors"),
    ({}, b"", "no tensors at all"),
    ({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 8]}}, b"\0" * 8, "a non-integer dimension"),
    ({"w": {"dtype": "F32", "shape": [True, 2], "data_offsets": [0, 8]}}, b"\0" * 8, "a boolean dimension"),
    ({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8, "a negative dimension"),
    ({"w": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}}, b"\0" * 8, "a shape that is not a list"),
    ({"w": {"dtype": "F33", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "an unknown dtype"),
    ({"w": {"dtype": 4, "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "a dtype that is not a string"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0.0, 8.0]}}, b"\0" * 8, "float offsets"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 9]}}, b"\0" * 9, "three offsets"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8, "begin after end"),
    ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "span differs from the shape"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "truncated data"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 12, "padding after the data"),
    ({"a": F32_2, "b": F32_2}, b"\0" * 8, "two tensors on the same bytes"),
    ({"a": F32_2, "b": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]}}, b"\0" * 16, "a hole"),
    ({"w": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, b"\0" * 2, "half a byte of F4"),
    ({"w": F32_2, "__metadata__": {"step": 3}}, b"\0" * 8, "metadata values must be strings"),
    ({"w": F32_2, "__metadata__": ["x"]}, b"\0" * 8, "metadata must be a mapping"),
    ({"w": {"dtype": "F32", "shape": [2]}}, b"\0" * 8, "no data_offsets"),
    ([F32_2], b"\0" * 8, "not an object"),
]


@pytest.mark.parametrize(("header", "data", "reason"), BAD_HEADERS, ids=[b[2] for b in BAD_HEADERS])
def test_bad_headers_are_corrupt(tmp_path, header, data, reason):
    path = write(tmp_path / "model.safetensors", header, data)
    with pytest.raises(CorruptSafetensors):
        read_safetensors_header(path)


@pytest.mark.parametrize(("raw", "reason"), [
    (b'{"w": ' + json.dumps(F32_2).encode() + b', "w": ' + json.dumps(F32_2).encode() + b"}", "a repeated key"),
    (b' [1]', "does not start with an object"),
    (b"{" * 100_000, "nested 100000 deep"),
    (b'{"w": \xff}', "not UTF-8"),
], ids=["duplicate", "array", "deep", "binary"])
def test_malformed_json_is_corrupt_never_a_crash(tmp_path, raw, reason):
    path = write(tmp_path / "model.safetensors", None, b"\0" * 8, raw=raw)
    with pytest.raises(CorruptSafetensors):
        read_safetensors_header(path)


def test_the_artifacts_gate_reports_a_bad_header_as_corrupt_artifact(tmp_path):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(FIXTURES / "artifacts" / "clean", folder)
    write(folder / "model.safetensors", {"__metadata__": {"format": "pt"}})
    assert [f.rule for f in artifacts.check(model_dir=folder)] == ["corrupt_artifact"]


def test_a_valid_header_with_metadata_and_zero_sized_tensors_parses(tmp_path):
    header = {"__metadata__": {"format": "pt"}, "empty": {"dtype": "BF16", "shape": [0, 4], "data_offsets": [0, 0]},
              "w": {"dtype": "F4", "shape": [4], "data_offsets": [0, 2]}}
    assert set(read_safetensors_header(write(tmp_path / "m.safetensors", header, b"\0\0"))) == {"empty", "w"}


NUMPY_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "I64": "int64", "I32": "int32",
                "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text("abcdefgh._", min_size=1, max_size=8),
                       st.tuples(st.sampled_from(sorted(NUMPY_DTYPES)), st.lists(st.integers(0, 4), max_size=3)),
                       min_size=1, max_size=5))
def test_every_file_the_library_writes_parses_with_the_same_tensors(tensors):
    import numpy as np
    from safetensors.numpy import save_file

    arrays = {name: np.zeros(shape, dtype=NUMPY_DTYPES[dtype]) for name, (dtype, shape) in tensors.items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.safetensors"
        save_file(arrays, str(path), metadata={"format": "np"})
        parsed = read_safetensors_header(path)
    assert {k: (v["dtype"], v["shape"]) for k, v in parsed.items()} == {
        k: (d, list(s)) for k, (d, s) in tensors.items()}


_value = st.one_of(st.none(), st.booleans(), st.integers(-3, 40), st.floats(allow_nan=False, width=16),
                   st.text(max_size=4), st.sampled_from(sorted(DTYPE_BITS)))
_entry = st.fixed_dictionaries({}, optional={
    "dtype": st.one_of(st.sampled_from(["F32", "F16", "U8", "F4", "BOOL"]), _value),
    "shape": st.one_of(st.lists(st.integers(0, 6), max_size=3), st.lists(_value, max_size=3), _value),
    "data_offsets": st.one_of(st.lists(st.integers(0, 64), min_size=2, max_size=2), st.lists(_value, max_size=3)),
})


@settings(max_examples=150, deadline=None)
@given(header=st.dictionaries(st.text("abw_", min_size=1, max_size=3), _entry, max_size=3),
       metadata=st.one_of(st.none(), st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=3), _value))),
       data=st.integers(0, 64))
def test_what_this_parser_accepts_the_library_loads(header, metadata, data):
    """Hostile headers: a CorruptSafetensors or a header the library agrees with, never another exception."""
    from safetensors import safe_open

    doc = dict(header)
    if metadata is not None:
        doc["__metadata__"] = metadata
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp) / "x.safetensors", doc, b"\0" * data)
        try:
            parsed = read_safetensors_header(path)
        except CorruptSafetensors:
            return
        with safe_open(str(path), framework="numpy") as handle:
            assert sorted(handle.keys()) == sorted(parsed)
