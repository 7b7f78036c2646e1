"""Rows of the tensors of a model folder's safetensors files, read by offset: never a whole matrix.

:class:`WeightFiles` indexes every tensor of a folder (``model.safetensors``, the shards a
``model.safetensors.index.json`` names, ``adapter_model.safetensors`` or ``consolidated*``) from
the headers alone. :meth:`WeightFiles.rows` reads only the rows asked for, each at its byte
offset in the one file the tensor lives in, so checking 300 rows of a 128k x 4096 embedding
reads about 2 MB, not 1 GB. Floating dtypes F64, F32, F16 and BF16 are converted to float32; others
(FP8, integers) raise :class:`UnsupportedDtype`.

::

    weights = WeightFiles.open("models/llama-3-8b")
    embed = weights.find_embedding()                 # TensorRef of model.embed_tokens.weight
    norms = weights.row_norms(embed, [128006, 128009])
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers.safetensors_header import DTYPE_BYTES, CorruptSafetensors, read_header_and_start

INDEX = "model.safetensors.index.json"
SINGLE = ("model.safetensors", "adapter_model.safetensors")
# Suffixes of the input embedding and of the output head, in the order they are preferred.
EMBEDDING_SUFFIXES = ("embed_tokens.weight", "wte.weight", "word_embeddings.weight", "tok_embeddings.weight",
                      "embed_in.weight")
HEAD_SUFFIXES = ("lm_head.weight", "embed_out.weight", "output.weight")
FLOAT_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2"}
# safetensors dtype -> the torch dtype name transformers writes in config.json
TORCH_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
               "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}


class UnsupportedDtype(ValueError):
    """A tensor whose dtype has no float32 reading here (FP8, integers)."""


@dataclass(frozen=True)
class TensorRef:
    """Where one tensor's bytes are: its file, dtype, shape and absolute byte range."""

    name: str
    file: Path
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 0

    @property
    def row_elements(self) -> int:
        count = 1
        for d in self.shape[1:]:
            count *= d
        return count

    @property
    def elements(self) -> int:
        return self.rows * self.row_elements if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.end - self.start

    @property
    def module(self) -> str:
        """The module path of a weight: ``model.embed_tokens`` for ``model.embed_tokens.weight``."""
        return self.name.rsplit(".", 1)[0] if "." in self.name else self.name


@dataclass
class WeightFiles:
    """Every tensor of a folder's safetensors files, from their headers."""

    folder: Path
    tensors: dict[str, TensorRef]
    files: tuple[Path, ...]

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> WeightFiles:
        """Index the folder's weights; :class:`InputError` when it has none or a header is corrupt."""
        root = Path(folder)
        files = weight_files(root)
        if not files:
            raise InputError(f"{root}: no safetensors weights (model.safetensors, {INDEX} or adapter_model.safetensors)",
                             hint="save the model with save_pretrained (safetensors is the default)")
        tensors: dict[str, TensorRef] = {}
        for file in files:
            try:
                header, start = read_header_and_start(file)
            except (CorruptSafetensors, OSError) as exc:
                raise InputError(f"{file}: unreadable safetensors header ({exc})",
                                 hint="the artifacts gate reports it as corrupt_artifact; save the model again") from None
            for name, info in header.items():
                begin, end = info["data_offsets"]
                tensors[name] = TensorRef(name, file, str(info["dtype"]), tuple(info["shape"]), start + begin, start + end)
        return cls(root, tensors, tuple(files))

    # ------------------------------------------------------------------ lookups

    def find(self, suffixes: Sequence[str], rows: int | None = None) -> TensorRef | None:
        """The tensor whose name ends with the first suffix that matches (``.suffix`` or the whole
        name); among several, the one with ``rows`` rows, else the shortest name."""
        for suffix in suffixes:
            found = [t for n, t in self.tensors.items() if n == suffix or n.endswith("." + suffix)]
            if found:
                exact = [t for t in found if rows is not None and t.rows == rows]
                return min(exact or found, key=lambda t: len(t.name))
        return None

    def find_embedding(self, rows: int | None = None) -> TensorRef | None:
        return self.find(EMBEDDING_SUFFIXES, rows)

    def find_head(self, rows: int | None = None) -> TensorRef | None:
        return self.find(HEAD_SUFFIXES, rows)

    # ------------------------------------------------------------------ sizes and dtypes

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())

    @property
    def total_elements(self) -> int:
        return sum(t.elements for t in self.tensors.values())

    def bytes_by_dtype(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for t in self.tensors.values():
            out[t.dtype] += t.nbytes
        return dict(out.most_common())

    def float_dtype(self) -> str | None:
        """The floating dtype that holds most bytes (``BF16``, ``F32``...), or None."""
        floats = {d: b for d, b in self.bytes_by_dtype().items() if d.startswith(("F", "BF"))}
        return max(floats, key=floats.__getitem__) if floats else None

    # ------------------------------------------------------------------ rows

    def rows(self, ref: TensorRef, indices: Iterable[int]) -> Any:
        """float32 array ``(len(indices), row_elements)`` of the rows ``indices`` of ``ref``."""
        import numpy as np

        wanted = [int(i) for i in indices]
        if ref.dtype not in FLOAT_DTYPES:
            raise UnsupportedDtype(f"{ref.name}: dtype {ref.dtype} is not read here")
        raw = b"".join(self.raw_rows(ref, wanted))
        picked = np.frombuffer(raw, dtype=FLOAT_DTYPES[ref.dtype]).reshape(len(wanted), ref.row_elements)
        if ref.dtype == "BF16":
            return (picked.astype(np.uint32) << 16).view(np.float32)
        return picked.astype(np.float32)

    def raw_rows(self, ref: TensorRef, indices: Iterable[int]) -> list[bytes]:
        """The bytes of rows ``indices`` (any dtype), each read at its offset with one ``pread``.

        Reads, not a memory map: a map of a freshly written file can charge a whole page-cache
        folio (up to 2 MB) to the process for each row it touches, so 1000 sampled rows of a 1 GB
        matrix would show as a gigabyte of RSS (measured by ``benchmarks/bench_embeddings.py``).
        """
        width = int(DTYPE_BYTES.get(ref.dtype, 0) * ref.row_elements)
        wanted = [int(i) for i in indices]
        if any(i < 0 or i >= ref.rows for i in wanted):
            raise IndexError(f"{ref.name}: rows outside 0..{ref.rows - 1}")
        out = []
        fd = os.open(ref.file, os.O_RDONLY)
        try:
            for i in wanted:
                chunk = os.pread(fd, width, ref.start + i * width)
                if len(chunk) != width:
                    raise InputError(f"{ref.file}: {ref.name} row {i} is cut short (truncated file)",
                                     hint="download or save the model again")
                out.append(chunk)
        finally:
            os.close(fd)
        return out

    def row_norms(self, ref: TensorRef, indices: Iterable[int]) -> list[float]:
        """L2 norm of each row (NaN when the row holds a NaN or an infinity)."""
        import numpy as np

        rows = self.rows(ref, indices)
        with np.errstate(over="ignore", invalid="ignore"):
            norms = np.sqrt((rows.astype(np.float64) ** 2).sum(axis=1))
        finite = np.isfinite(rows).all(axis=1)
        return [float(n) if ok else float("nan") for n, ok in zip(norms.tolist(), finite.tolist(), strict=True)]


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files a folder's weights live in (the index's shards, else the single files)."""
    index = folder / INDEX
    if index.is_file():
        try:
            data = json.loads(index.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{index}: unreadable shard index ({exc})", hint="save the model again") from None
        shards = sorted({str(s) for s in (data.get("weight_map") or {}).values()}) if isinstance(data, dict) else []
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise InputError(f"{index}: shard {missing[0]!r} is missing ({len(missing)} of {len(shards)})",
                             hint="download every shard, or save the model again")
        return [folder / s for s in shards]
    singles = [folder / name for name in SINGLE if (folder / name).is_file()]
    return singles or sorted(folder.glob("consolidated*.safetensors"))


def sample_rows(total: int, count: int, exclude: Iterable[int] = ()) -> list[int]:
    """``count`` rows spread evenly over ``0..total-1``, without ``exclude``: the reference rows."""
    skip = set(exclude)
    if total <= 0:
        return []
    step = max(total / max(count, 1), 1.0)
    picked = sorted({min(int(i * step), total - 1) for i in range(min(count, total))})
    return [i for i in picked if i not in skip]
