"""Rows read by offset from safetensors files: exactly the values torch holds, never the whole matrix."""

from __future__ import annotations

import json
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers.safetensors_rows import UnsupportedDtype, WeightFiles, sample_rows

DTYPES = ["float32", "float16", "bfloat16"]


def save(folder: Path, tensors: dict, name: str = "model.safetensors") -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / name), metadata={"format": "pt"})
    return folder


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 40), cols=st.integers(1, 9), dtype=st.sampled_from(DTYPES), data=st.data())
def test_rows_are_the_values_torch_holds(rows, cols, dtype, data):
    import torch

    picked = data.draw(st.lists(st.integers(0, rows - 1), max_size=8))
    gen = torch.Generator().manual_seed(rows * 31 + cols)
    matrix = (torch.randn((rows, cols), generator=gen) * 3).to(getattr(torch, dtype))
    other = torch.arange(6, dtype=torch.float32)  # a second tensor: offsets past the first matter
    with tempfile.TemporaryDirectory() as tmp:
        weights = WeightFiles.open(save(Path(tmp), {"a.bias": other, "model.embed_tokens.weight": matrix}))
        ref = weights.find_embedding()
        assert ref is not None and ref.shape == (rows, cols)
        got = weights.rows(ref, picked)
        assert got.shape == (len(picked), cols)
        assert got.tolist() == matrix.float()[picked].tolist()
        assert weights.raw_rows(ref, picked[:2]) == [matrix[i].view(torch.uint8).numpy().tobytes() for i in picked[:2]]


@settings(max_examples=60, deadline=None)
@given(total=st.integers(0, 10_000), count=st.integers(0, 600), exclude=st.sets(st.integers(0, 10_000), max_size=20))
def test_sample_rows_spread_over_the_matrix(total, count, exclude):
    rows = sample_rows(total, count, exclude)
    assert rows == sorted(set(rows)) and len(rows) <= min(count, total)
    assert all(0 <= r < total and r not in exclude for r in rows)
    if total and count >= 2 and not exclude:
        assert rows[0] == 0 and rows[-1] >= total * (1 - 2 / count) - 1


def test_a_few_rows_of_a_large_matrix_cost_a_few_rows(tmp_path):
    import torch

    matrix = torch.randn((128256, 8))  # 4 MB
    weights = WeightFiles.open(save(tmp_path / "big", {"model.embed_tokens.weight": matrix}))
    ref = weights.find_embedding()
    assert ref is not None
    tracemalloc.start()
    weights.row_norms(ref, [128000, 128006, 128009])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 256 * 1024, f"{peak} bytes traced reading 3 rows of a 4 MB matrix"


def test_sharded_weights_are_found_through_the_index(tmp_path):
    import torch

    folder = tmp_path / "sharded"
    save(folder, {"model.embed_tokens.weight": torch.ones((4, 2))}, "model-00001-of-00002.safetensors")
    save(folder, {"lm_head.weight": torch.zeros((4, 2), dtype=torch.bfloat16)}, "model-00002-of-00002.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
        "lm_head.weight": "model-00002-of-00002.safetensors"}}))
    weights = WeightFiles.open(folder)
    head = weights.find_head()
    assert head is not None and weights.row_norms(head, [0, 3]) == [0.0, 0.0]
    assert weights.bytes_by_dtype() == {"F32": 32, "BF16": 16} and weights.float_dtype() == "F32"
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(InputError):
        WeightFiles.open(folder)


def test_no_weights_and_unreadable_dtypes(tmp_path):
    import torch

    with pytest.raises(InputError):
        WeightFiles.open(tmp_path)
    weights = WeightFiles.open(save(tmp_path / "int", {"model.embed_tokens.weight": torch.ones((3, 2), dtype=torch.int32)}))
    ref = weights.find_embedding()
    assert ref is not None
    with pytest.raises(UnsupportedDtype):
        weights.rows(ref, [0])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"\xff" * 12)
    with pytest.raises(InputError):
        WeightFiles.open(tmp_path / "bad")
