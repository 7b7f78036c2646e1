"""The one walk of a model folder: every regular file in it, and everything that is not one.

The artifacts gate, the release gate and its manifest, the resume fingerprint, promotion and
publishing all list a folder with :func:`list_model_folder`, so what one of them sees the others
see too: dot-folders (``.cache/``), ``__pycache__`` and every subfolder are walked; nothing is
skipped.

A symlink inside the folder is never followed, wherever it points (inside the folder, outside it,
nowhere, in a loop): it is listed in :attr:`FolderListing.odd` with what it is, as are FIFOs,
sockets, device nodes and subfolders that cannot be read. A release holds regular files only.

Example::

    listing = list_model_folder("out/merged")
    listing.files        # ("config.json", "model.safetensors", ".cache/evil.bin", ...) sorted
    listing.odd          # (OddEntry(".notes", "symlink", "/etc/shadow"),)
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from sftgate.gates.frame.core import InputError

MAX_ENTRIES = 1_000_000  # far beyond any model folder; bounds the memory of a hostile one


@dataclass(frozen=True)
class OddEntry:
    """A folder entry that is not a regular file: ``what`` is ``symlink``, ``dangling symlink``,
    ``symlink loop``, ``fifo``, ``socket``, ``device`` or ``unreadable folder``; ``target`` is
    what a symlink points at (its text, never resolved)."""

    rel: str
    what: str
    target: str | None = None


@dataclass(frozen=True)
class FolderListing:
    """The regular files of a folder (sorted POSIX paths relative to it) and its odd entries."""

    root: Path
    files: tuple[str, ...]
    odd: tuple[OddEntry, ...]

    def path(self, rel: str) -> Path:
        return self.root / rel


def list_model_folder(root: str | os.PathLike[str]) -> FolderListing:
    """Walk ``root`` without following any symlink inside it; raise InputError when it is not a folder.

    ``root`` itself may be a link to a folder (the path the user named is read as given).
    """
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"{base}: not a folder", hint="pass the model folder itself")
    files: list[str] = []
    odd: list[OddEntry] = []
    stack = [""]
    count = 0
    while stack:
        prefix = stack.pop()
        try:
            with os.scandir(base / prefix if prefix else base) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            odd.append(OddEntry(prefix, "unreadable folder", exc.strerror))
            continue
        for entry in entries:
            count += 1
            if count > MAX_ENTRIES:
                raise InputError(f"{base}: more than {MAX_ENTRIES} entries, not a model folder",
                                 hint="point sftgate at the folder that holds config.json")
            rel = f"{prefix}/{entry.name}" if prefix else entry.name
            kind = _kind(entry)
            if kind == "file":
                files.append(rel)
            elif kind == "folder":
                stack.append(rel)
            else:
                odd.append(OddEntry(rel, kind, _link_text(entry) if "symlink" in kind else None))
    return FolderListing(base, tuple(sorted(files)), tuple(sorted(odd, key=lambda o: o.rel)))


def _kind(entry: os.DirEntry[str]) -> str:
    try:
        mode = entry.stat(follow_symlinks=False).st_mode
    except OSError:
        return "unreadable entry"
    if stat.S_ISLNK(mode):
        try:
            os.stat(entry.path)
        except FileNotFoundError:
            return "dangling symlink"
        except OSError as exc:
            return "symlink loop" if exc.errno == errno.ELOOP else "dangling symlink"
        return "symlink"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def _link_text(entry: os.DirEntry[str]) -> str | None:
    try:
        return os.readlink(entry.path)
    except OSError:
        return None
