"""The atomic folder swap, and the one rule of what sftgate may replace: only folders it made.

Every folder sftgate writes as a whole (the release, the merged model, the adapter, a tiny model,
the demo folder) is written into a hidden temp sibling and swapped in by :func:`replace_dir`. A
folder is sftgate's when it holds one of :data:`MARKERS` (the release manifest, the training
record, the merge record, the tiny-model record, the demo record). :func:`ensure_replaceable`
refuses (exit 2, naming the folder and the fix) a target that

- is a symlink or a file (sftgate never follows or replaces links);
- is a non-empty folder without a marker: the user's folder, never deleted;
- is, or holds, a protected path: the config, the data, the base model, the tokenizer, the run
  folder, another output of the same run.

Runners call it before any expensive work; :func:`replace_dir` calls it again as the last line of
defence. The swap:

- a missing target is one rename;
- an existing one is exchanged atomically with ``renameat2(RENAME_EXCHANGE)`` (Linux);
- elsewhere, or where the exchange is refused (EXDEV on overlayfs), the old folder is moved aside
  (copied aside, if the filesystem refuses to rename it) and the new one renamed in. A kill
  between those two steps leaves no folder at the target for a moment: :func:`recover`, which
  every writer and ``sftgate release`` run first, restores it.

Leftovers carry the writer's pid; :func:`recover` removes those whose writer is gone (zombies and
reused pids count as gone: :func:`sftgate.gates.readers.leftovers.writer_running`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers.leftovers import writer_running
from sftgate.gates.readers.model_folder import list_model_folder

MERGE_MARKER = "sftgate-merge.json"  # a merged model (runners.work.merge)
DEMO_MARKER = "sftgate-demo.json"  # a demo folder: the only kind `sftgate demo --out` writes into
MARKERS = ("sftgate-manifest.json", "sftgate-train.json", MERGE_MARKER, "sftgate-tiny-model.json", DEMO_MARKER)
TMP_TAG = ".promote-"
OLD_TAG = ".previous-"
COPY_TAG = ".copying-"
Protected = tuple[Path, str]  # (path, what it is: "the config", "the training data", ...)


class TargetRefused(InputError):
    """A target folder sftgate must not replace (not its own, a link, or holding an input): exit 2."""


# --------------------------------------------------------------------------- ownership


def owner_marker(folder: str | os.PathLike[str]) -> str | None:
    """The sftgate marker file ``folder`` holds (a regular file, not a link), or None."""
    for name in MARKERS:
        path = Path(folder) / name
        if path.is_file() and not path.is_symlink():
            return name
    return None


def ensure_replaceable(target: str | os.PathLike[str], *, protected: Iterable[Protected] = (),
                       setting: str | None = None) -> None:
    """Raise :class:`TargetRefused` unless sftgate may replace ``target`` (see the module doc).

    ``setting`` names where the target came from (``release.dir``, ``--out``) for the message.
    """
    dst = Path(target)
    named = f"{setting} = {dst}" if setting else str(dst)
    fix = f"point {setting or 'it'} at a new or empty folder of its own"
    if dst.is_symlink():
        raise TargetRefused(f"{named} is a symlink: sftgate never follows or replaces links", hint=fix)
    if dst.exists() and not dst.is_dir():
        raise TargetRefused(f"{named} is a file, not a folder: sftgate will not replace it", hint=fix)
    where = dst.resolve()
    for path, what in protected:
        held = Path(path).resolve()
        if held == where or where in held.parents:
            relation = "is" if held == where else "holds"
            raise TargetRefused(
                f"{named} {relation} {what} ({path}): sftgate never replaces a folder that holds the "
                "config, data, base model, tokenizer or run folder",
                hint=f"{fix}, e.g. a release/ folder inside the run folder",
            )
    if dst.is_dir() and owner_marker(dst) is None and _has_entries(dst):
        raise TargetRefused(
            f"{named} is a folder sftgate did not make (it holds none of {', '.join(MARKERS[:3])}...): "
            "sftgate replaces only its own folders and will not delete yours",
            hint=f"{fix}, or move {dst} away yourself if it really is to be replaced",
        )


def _has_entries(folder: Path) -> bool:
    try:
        with os.scandir(folder) as it:
            return next(it, None) is not None
    except OSError:
        return True


# --------------------------------------------------------------------------- the swap

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux ``renameat2(RENAME_EXCHANGE)``; False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def temp_dir_for(target: str | os.PathLike[str], tag: str = TMP_TAG) -> Path:
    """A hidden sibling path of ``target`` for writing its next version (not created here).

    Its name carries this process id, so :func:`recover` can tell a live writer from a killed one.
    """
    dst = Path(target)
    return dst.parent / f".{dst.name}{tag}{os.getpid()}-{secrets.token_hex(4)}"


def replace_dir(new: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Make the complete folder ``new`` appear at ``target``; readers never see a partial folder.

    Repairs what a killed earlier swap left (:func:`recover`), then refuses (:class:`TargetRefused`)
    a target sftgate did not make. The old contents are deleted afterwards. ``new`` and ``target``
    must be siblings (one filesystem).
    """
    new_p, dst = Path(new), Path(target)
    recover(dst)
    ensure_replaceable(dst)
    if not dst.exists():
        os.rename(new_p, dst)
        fsync_dir(dst.parent)
        return
    if _exchange(new_p, dst):
        fsync_dir(dst.parent)
        remove_owned(new_p)  # now holds the previous contents
        return
    backup = temp_dir_for(dst, OLD_TAG)
    _move_aside(dst, backup)
    try:
        os.rename(new_p, dst)
    except BaseException:
        os.rename(backup, dst)
        raise
    fsync_dir(dst.parent)
    remove_owned(backup)


def _move_aside(dst: Path, backup: Path) -> None:
    """Rename ``dst`` to ``backup``; where the filesystem refuses (EXDEV: a lower-layer folder on
    overlayfs), copy it to ``backup`` completely first, then delete it, markers first."""
    try:
        os.rename(dst, backup)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    copying = temp_dir_for(dst, COPY_TAG)
    try:
        shutil.copytree(dst, copying, symlinks=True)
        os.rename(copying, backup)
    except BaseException:
        shutil.rmtree(copying, ignore_errors=True)
        raise
    fsync_dir(dst.parent)
    remove_owned(dst)


def remove_owned(path: Path) -> None:
    """Delete a folder sftgate made, its markers first: a kill midway leaves a folder that is
    visibly not a complete sftgate folder (which :func:`recover` recognises as remains)."""
    for name in MARKERS:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
            os.unlink(path / name)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)


def recover(target: str | os.PathLike[str]) -> list[str]:
    """Repair what a killed promotion or merge left next to ``target``; returns what it did.

    Restores the previous folder when a kill fell between the two steps of the fallback swap
    (nothing at the target, or only the remains of the old folder being deleted), and removes
    leftovers whose writer no longer runs.
    """
    dst = Path(target)
    done: list[str] = []
    if not dst.parent.is_dir():
        return done
    tags = "|".join(re.escape(t) for t in (TMP_TAG, OLD_TAG, COPY_TAG))
    pattern = re.compile(rf"^\.{re.escape(dst.name)}(?P<tag>{tags})(?P<pid>\d+)-[0-9a-f]+$")
    leftovers: list[tuple[str, Path]] = []
    for entry in dst.parent.iterdir():
        m = pattern.match(entry.name)
        if m and entry.is_dir() and not entry.is_symlink():
            with contextlib.suppress(OSError):
                if not writer_running(int(m.group("pid")), entry.stat().st_ctime):
                    leftovers.append((m.group("tag"), entry))
    backups = sorted((p for tag, p in leftovers if tag == OLD_TAG), key=lambda p: p.stat().st_mtime)
    if backups and dst.is_dir() and not dst.is_symlink() and _remains_of(dst, backups[-1]):
        remove_owned(dst)
        done.append(f"removed the half-deleted {dst}")
    if backups and not dst.exists() and not dst.is_symlink():
        os.rename(backups[-1], dst)
        done.append(f"restored {dst} from {backups[-1].name}")
    for _, path in leftovers:
        if path.exists() and path != dst:
            remove_owned(path)
            done.append(f"removed stale {path.name}")
    return done


def _remains_of(dst: Path, backup: Path) -> bool:
    """``dst`` lost its marker and holds nothing the complete ``backup`` does not: a half-deleted copy."""
    if owner_marker(dst) is not None or owner_marker(backup) is None:
        return False
    try:
        now, before = list_model_folder(dst), list_model_folder(backup)
    except InputError:
        return False
    return not now.odd and set(now.files) <= set(before.files)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
