"""What a model folder (and so a release) may hold: an allow-list, and what everything else is.

:func:`classify` names the kind of one file from its path relative to the folder:

- ``unsafe_weights``: a pickle-ish or archive format that can run code when loaded, by any of its
  suffixes (``.bin``, ``.pt``, ``.pth``, ``.ckpt``, ``.pkl``, ``.pickle``, ``.joblib``, ``.dill``,
  ``.npy``, ``.npz``, ``.tar``, ``.zip``, ``.msgpack``, ``.h5``, ``.hdf5``, ``.keras``), so
  ``model.bin.1`` and ``x.tar.gz`` count too;
- ``remote_code``: code (``.py``, ``.pyc``, ``.pyo``, ``.pyd``, ``.so``, ``.dll``, ``.dylib``), by any suffix;
- ``unexpected``: a hidden file or folder (a path part starting with ``.``), a name that is not
  printable UTF-8, or a file that is not on the allow-list;
- otherwise the allowed kind: ``weights`` (``.safetensors``), ``json``, ``template`` (``.jinja``),
  ``tokenizer`` (``*.model``, ``tokenizer.model.v3``, ``*.tiktoken``), ``text`` (``.md``, ``.txt``,
  ``.yaml``, ``LICENSE``, ``NOTICE``...), ``image`` (raster figures of the model card).

:func:`sniff` looks at the first bytes of an allowed file: a pickle stream or a zip archive under
an innocent name (``notes.txt``) is ``unsafe_weights`` all the same. :func:`remote_code_keys` finds
``auto_map`` and ``custom_pipelines`` at any depth of a JSON document.

Example::

    classify(".cache/evil.bin")       # "unsafe_weights"
    classify("config.json")           # "json"
    classify("x\\n::error::FORGED")   # "unexpected"
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

UNSAFE_SUFFIXES = frozenset({
    ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".dill", ".npy", ".npz", ".tar", ".zip",
    ".msgpack", ".h5", ".hdf5", ".keras",
})
CODE_SUFFIXES = frozenset({".py", ".pyc", ".pyo", ".pyd", ".pyw", ".so", ".dll", ".dylib"})
ALLOWED_SUFFIXES: dict[str, str] = {
    ".safetensors": "weights",
    ".json": "json",
    ".jinja": "template",
    ".model": "tokenizer",
    ".tiktoken": "tokenizer",
    ".md": "text", ".txt": "text", ".yaml": "text", ".yml": "text",
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".gif": "image", ".webp": "image",
}
ALLOWED_NAMES = frozenset({"LICENSE", "LICENCE", "NOTICE", "COPYING", "USE_POLICY", "README"})
VERSIONED_TOKENIZER = re.compile(r"^tokenizer\.model\.v\d+$")  # mistral's tokenizer.model.v3
REMOTE_CODE_KEYS = ("auto_map", "custom_pipelines")
MAX_JSON_DEPTH = 1000

_PICKLE_START = tuple(bytes([0x80, proto]) for proto in range(2, 6))
_ZIP_START = b"PK\x03\x04"


def classify(rel: str) -> str:
    """The kind of the file at ``rel`` (a POSIX path relative to the model folder): see the module doc."""
    path = PurePosixPath(rel)
    suffixes = {s.lower() for s in path.suffixes}
    if suffixes & UNSAFE_SUFFIXES:
        return "unsafe_weights"
    if suffixes & CODE_SUFFIXES:
        return "remote_code"
    if not _plain_name(rel) or any(part.startswith(".") for part in path.parts):
        return "unexpected"
    if path.name in ALLOWED_NAMES:
        return "text"
    if VERSIONED_TOKENIZER.match(path.name):
        return "tokenizer"
    return ALLOWED_SUFFIXES.get(path.suffix.lower(), "unexpected")


def why_unexpected(rel: str) -> str:
    """Why :func:`classify` called ``rel`` unexpected, in a few words."""
    if not _plain_name(rel):
        return "its name is not printable UTF-8 (control characters, newlines or undecodable bytes)"
    hidden = next((p for p in PurePosixPath(rel).parts if p.startswith(".")), None)
    if hidden is not None:
        return f"{hidden!r} is hidden (a dot-file or dot-folder)"
    return "its kind is not on the release allow-list"


def sniff(path: Path) -> str | None:
    """``"pickle"`` or ``"zip"`` when the file starts like one, else None (unreadable: None)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return None
    if head.startswith(_PICKLE_START):
        return "pickle"
    if head.startswith(_ZIP_START):
        return "zip"
    return None


def remote_code_keys(value: Any) -> Iterator[tuple[str, Any]]:
    """``(dotted path, value)`` of every non-empty ``auto_map`` / ``custom_pipelines`` at any depth."""
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    while stack:
        where, node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            continue
        if isinstance(node, dict):
            for key, child in node.items():
                path = f"{where}.{key}" if where else str(key)
                if key in REMOTE_CODE_KEYS and child:
                    yield path, child
                else:
                    stack.append((path, child, depth + 1))
        elif isinstance(node, list):
            stack.extend((f"{where}[{i}]", child, depth + 1) for i, child in enumerate(node))


def _plain_name(rel: str) -> bool:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes surface as lone surrogates
        return False
    return rel.isprintable() and "\\" not in rel
