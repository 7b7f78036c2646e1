"""What a peer job config trains on, in one shape for every tool (:class:`PeerJob`).

Each tool has its reader (``job_<tool>.py``, dispatched by
:func:`sftgate.gates.config.peer.job_reader.read_job`) that fills a :class:`PeerJob`: the datasets with
their format mappings, the tokenizer and chat template, the sequence length, the LoRA targets,
``train_on_inputs`` / packing / special tokens, a prepared (tokenized) dataset. Every value
keeps the key path it came from, so a finding points at ``FILE:key.path``.

Relative paths are resolved as the tools do (from the folder they run in, usually the project
root): from the config's folder, the current folder, and the config's parent folders up to the
project root (the nearest folder with ``.git``, ``pyproject.toml`` or ``setup.py``), in that order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftgate.gates.readers.document import Document, KeyPath

MAX_PARENTS = 4
_ROOT_MARKERS = (".git", "pyproject.toml", "setup.py", "setup.cfg")
DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".pq", ".csv", ".arrow", ".txt", ".tsv")


@dataclass(frozen=True)
class Setting:
    """A value of the config and the key path it came from."""

    value: Any
    key_path: KeyPath


@dataclass
class DatasetRef:
    """One dataset the job names: where, how to read it, and what became of it."""

    role: str  # "train" or "eval"
    value: str  # as the config writes it
    key_path: KeyPath
    location: str  # FILE:key.path (or dataset_info.json:name)
    line: int | None = None
    path: Path | None = None  # the local file or folder, when found
    mapping: dict[str, Any] | None = None  # how to convert it to sftgate's formats (None: it is one)
    missing: bool = False  # a local path that does not exist
    note: str | None = None  # why it is not checked (a Hub dataset, a format sftgate does not read)
    tried: list[str] = field(default_factory=list)


@dataclass
class PeerJob:
    """Everything the gates need from a peer config, each value with its key path."""

    tool: str
    doc: Document
    search_dirs: tuple[Path, ...]
    datasets: list[DatasetRef] = field(default_factory=list)
    model: Setting | None = None
    revision: str | None = None
    tokenizer: Setting | None = None
    chat_template: Setting | None = None  # a .jinja file path or inline text (value), or None: the tokenizer's
    builtin_template: Setting | None = None  # a template of the tool itself (axolotl chatml, LLaMA-Factory llama3)
    system: str | None = None
    max_seq_len: Setting | None = None
    lora_targets: Setting | None = None  # a list of names, or "all-linear"
    train_on_inputs: Setting | None = None
    packing: Setting | None = None
    special_tokens: Setting | None = None
    prepared: Setting | None = None  # a tokenized dataset (save_to_disk folder)
    findings: list[Any] = field(default_factory=list)  # findings of files the config points at (dataset_info.json)

    def location(self, key_path: KeyPath) -> str:
        return self.doc.location(key_path)

    def line(self, key_path: KeyPath) -> int | None:
        return self.doc.line_of(key_path)

    def train(self) -> list[DatasetRef]:
        return [d for d in self.datasets if d.role == "train"]

    def eval(self) -> list[DatasetRef]:
        return [d for d in self.datasets if d.role == "eval"]


def search_dirs(config_path: Path) -> tuple[Path, ...]:
    """The folders a relative path in a config may be relative to (see the module doc)."""
    folder = config_path.parent.resolve() if config_path.parent != Path("") else Path.cwd()
    out = [config_path.parent if str(config_path.parent) else Path("."), Path(".")]
    parent = folder
    for _ in range(MAX_PARENTS):
        if any((parent / marker).exists() for marker in _ROOT_MARKERS) or parent.parent.parent == parent.parent:
            break  # the project root, or the folder below the filesystem root
        parent = parent.parent
        out.append(parent)
    return tuple(dict.fromkeys(out))


def resolve(value: str, dirs: tuple[Path, ...]) -> tuple[Path | None, list[str]]:
    """The first existing path for ``value`` (absolute, or relative to one of ``dirs``), and all tried."""
    path = Path(os.path.expanduser(value))
    tried = [path] if path.is_absolute() else [d / path for d in dirs]
    for candidate in tried:
        try:
            if candidate.exists():
                return candidate, [str(p) for p in tried]
        except OSError:
            continue
    return None, [str(p) for p in tried]


def looks_like_path(value: str) -> bool:
    """A dataset value that can only be a local path (a data-file suffix, ``./``, ``/``, ``~``, two '/')."""
    return (value.startswith(("./", "../", "/", "~", ".\\")) or value.lower().endswith(DATA_SUFFIXES)
            or value.count("/") >= 2 or "\\" in value)


def local_dataset(job: PeerJob, role: str, value: str, key_path: KeyPath, *, mapping: dict[str, Any] | None = None,
                  hub_ok: bool = True, what: str = "dataset") -> DatasetRef:
    """A :class:`DatasetRef` for a path-or-Hub-ID value: found, missing, or a Hub dataset (not checked)."""
    ref = DatasetRef(role, value, key_path, job.location(key_path), job.line(key_path), mapping=mapping)
    path, ref.tried = resolve(value, job.search_dirs)
    if path is not None:
        ref.path = path
    elif looks_like_path(value) or not hub_ok:
        ref.missing = True
    else:
        ref.note = f"{what} '{value}' is not a local file or folder: a Hub dataset, not read offline"
    return ref


def setting(data: dict[str, Any], key: str) -> Setting | None:
    """``data[key]`` as a :class:`Setting` when it is set (not None, not empty)."""
    value = data.get(key)
    if value is None or value == "" or value == []:
        return None
    return Setting(value, (key,))


def int_setting(data: dict[str, Any], key: str) -> Setting | None:
    found = setting(data, key)
    return found if found is not None and isinstance(found.value, int) and not isinstance(found.value, bool) else None
