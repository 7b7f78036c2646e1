"""Promotion: the release stage (publishing is :mod:`sftgate.runners.pipeline.publish`).

``promote`` copies a gated model folder into a release folder with a manifest
(``sftgate-manifest.json``: size and sha256 of every file, and the gate results), and only when
every gate of the report passed. It writes a hidden temp folder next to the release, verifies it
with the ``release`` gate, then swaps it in with one rename, so the release folder is always the
previous complete release or the new complete one:

- a failed or required-but-skipped gate: nothing is written (rules ``gate_failed``, ``gate_skipped``);
- a full disk or any write error: the temp folder is removed, the previous release is untouched;
- a killed process: the previous release is untouched; the next ``promote`` removes the stale temp
  folder (and restores the previous release if the kill fell between the two renames of the
  fallback swap on a filesystem without ``renameat2(RENAME_EXCHANGE)``).

The atomic folder swap it uses (``temp_dir_for``, ``replace_dir``, ``recover``) also writes the
adapter and the merged model.

Example::

    from sftgate.runners.pipeline.release import promote
    result = promote("runs/x/merged", "releases/x", report=report,
                     extra_manifest={"base_model": {"id": "mistralai/Mistral-7B-v0.3", "revision": sha}})
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as _dt
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from sftgate.gates import __version__
from sftgate.gates.frame.core import Finding, GateResult, InputError, Stage, Status
from sftgate.gates.frame.report import Report
from sftgate.gates.release import release as release_gate

GATE = "release"
CHUNK = 1 << 20
_TMP_TAG = ".promote-"
_OLD_TAG = ".previous-"


# --------------------------------------------------------------------------- promote


def blocking_findings(report: Report) -> Iterator[Finding]:
    """``gate_failed`` / ``gate_skipped`` for each gate of ``report`` that blocks promotion."""
    if not report.gates:
        yield release_gate.GATE_SKIPPED.finding(
            f"report {report.command!r} has no gate results: nothing proves this model was gated", "report"
        )
    for g in report.gates:
        where = f"{g.stage.value}/{g.gate}"
        reason = f": {g.reason}" if g.reason else ""
        if g.status in (Status.FAIL, Status.ERROR):
            rules = sorted({f.rule for f in g.findings if f.is_error})
            yield release_gate.GATE_FAILED.finding(
                f"gate {g.gate} [{g.stage.value}] {g.status.value}{reason}"
                + (f" ({', '.join(rules[:5])})" if rules else ""),
                where,
                evidence={"gate": g.gate, "status": g.status.value, "rules": rules},
            )
        elif g.status is Status.SKIP and g.required:
            yield release_gate.GATE_SKIPPED.finding(
                f"required gate {g.gate} [{g.stage.value}] was skipped{reason}", where, evidence={"gate": g.gate}
            )


def promote(
    source_dir: str | os.PathLike[str],
    release_dir: str | os.PathLike[str],
    *,
    report: Report,
    extra_manifest: dict[str, Any] | None = None,
    profile: str = "transformers",
    require_pinned_revision: bool = True,
) -> GateResult:
    """Promote ``source_dir`` to ``release_dir`` when every gate of ``report`` passed.

    Returns the release stage's gate result (gate ``release``): ``pass`` when the release folder now
    holds the new model and its manifest; ``fail`` when a gate blocks (nothing written);
    ``error`` when writing failed (nothing promoted, previous release untouched, exit 2).
    ``extra_manifest`` keys (e.g. ``base_model``, ``provenance``) are added to the manifest.
    """
    start = time.perf_counter()
    src, dst = Path(source_dir), Path(release_dir)
    metrics: dict[str, Any] = {"release_dir": str(dst)}

    def result(status: Status, findings: list[Finding], reason: str | None = None, exit_code: int = 3) -> GateResult:
        return GateResult(GATE, Stage.RELEASE, status, time.perf_counter() - start, findings,
                          reason=reason, metrics=metrics, error_exit_code=exit_code)

    if not src.is_dir():
        raise InputError(f"{src}: model folder to promote not found", hint="promote the merged model or adapter folder")
    if dst.resolve() == src.resolve() or dst.resolve() in src.resolve().parents:
        raise InputError(f"{dst}: the release folder must not be the source folder or contain it")
    findings = list(blocking_findings(report))
    if findings:
        return result(Status.FAIL, findings, f"nothing promoted: a gate blocks; {_previous(dst)}")

    recover(dst)
    tmp = temp_dir_for(dst)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        files = _copy_tree(src, tmp)
        manifest = build_manifest(files, report, extra_manifest, source=src)
        _write_manifest(tmp, manifest)
        verify_metrics: dict[str, Any] = {}
        problems = [
            f for f in release_gate.check(
                model_dir=tmp, profile=profile, require_pinned_revision=require_pinned_revision, metrics=verify_metrics
            )
        ]
        problems = [_relocate(f, tmp, src) for f in problems]
        metrics.update(files=len(files), bytes=sum(e["bytes"] for e in files.values()))
        if any(f.is_error for f in problems):
            _remove(tmp)
            return result(Status.FAIL, problems, f"nothing promoted: the release gate failed; {_previous(dst)}")
        _fsync_dir(tmp)
        replace_dir(tmp, dst)
    except OSError as exc:
        _remove(tmp)
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        where = f" ({exc.filename})" if exc.filename else ""
        return result(
            Status.ERROR, [],
            f"could not write the release: {why}{where}; nothing promoted; {_previous(dst)}",
            exit_code=2,
        )
    except BaseException:
        _remove(tmp)
        raise
    metrics["manifest_sha256"] = release_gate.sha256_file(dst / release_gate.MANIFEST_NAME)
    return result(Status.PASS, problems)


def build_manifest(
    files: dict[str, dict[str, Any]],
    report: Report,
    extra: dict[str, Any] | None = None,
    *,
    source: Path | None = None,
) -> dict[str, Any]:
    """The manifest document: files (bytes, sha256), gate results and any extra keys."""
    manifest: dict[str, Any] = {
        "sftgate_manifest": release_gate.MANIFEST_VERSION,
        "tool": "sftgate",
        "version": __version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": report.command,
        "passed": report.passed,
    }
    if source is not None:
        manifest["source"] = str(source)
    for key, value in (extra or {}).items():
        if key not in ("files", "gates", "sftgate_manifest"):
            manifest[key] = value
    manifest["gates"] = [g.to_dict() for g in report.gates]
    manifest["files"] = dict(sorted(files.items()))
    return manifest


def _copy_tree(src: Path, dst: Path) -> dict[str, dict[str, Any]]:
    """Copy every file (symlinks followed, as in a Hub cache snapshot), hashing while copying."""
    files: dict[str, dict[str, Any]] = {}
    for rel in release_gate.release_files(src):
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        size, digest = _copy_file(src / rel, target)
        files[rel] = {"bytes": size, "sha256": digest}
    return files


def _copy_file(src: Path, dst: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(src, "rb") as reader, open(dst, "xb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return size, digest.hexdigest()


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    with open(folder / release_gate.MANIFEST_NAME, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _relocate(finding: Finding, tmp: Path, src: Path) -> Finding:
    """Findings about the temp copy point at the source file the user can fix."""
    if str(tmp) not in finding.location:
        return finding
    return replace(finding, location=finding.location.replace(str(tmp), str(src)),
                   message=finding.message.replace(str(tmp), str(src)))


def _previous(dst: Path) -> str:
    return f"the previous release at {dst} is untouched" if dst.exists() else f"{dst} was not created"


# --------------------------------------------------------------------------- atomic folder swap

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
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def temp_dir_for(target: str | os.PathLike[str]) -> Path:
    """A hidden sibling path of ``target`` for writing its next version (not created here).

    Its name carries this process id, so :func:`recover` can tell a live writer from a killed one.
    """
    dst = Path(target)
    return dst.parent / f".{dst.name}{_TMP_TAG}{os.getpid()}-{secrets.token_hex(4)}"


def replace_dir(new: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Make the complete folder ``new`` appear at ``target``; readers never see a partial folder.

    A missing ``target`` is one rename. An existing one is swapped atomically where the kernel and
    filesystem support it; elsewhere it is moved aside, ``new`` renamed in, and the old one put
    back if that fails (``recover`` finishes the job after a kill between the two renames).
    The old contents are deleted afterwards. ``new`` and ``target`` must be on one filesystem.
    """
    new_p, dst = Path(new), Path(target)
    if not dst.exists():
        os.rename(new_p, dst)
        _fsync_dir(dst.parent)
        return
    if _exchange(new_p, dst):
        _fsync_dir(dst.parent)
        _remove(new_p)  # now holds the previous contents
        return
    backup = dst.parent / f".{dst.name}{_OLD_TAG}{os.getpid()}-{secrets.token_hex(4)}"
    os.rename(dst, backup)
    try:
        os.rename(new_p, dst)
    except BaseException:
        os.rename(backup, dst)
        raise
    _fsync_dir(dst.parent)
    _remove(backup)


def recover(target: str | os.PathLike[str]) -> list[str]:
    """Repair what a killed promotion or merge left next to ``target``; returns what it did.

    Restores the previous folder when a kill fell between the two renames of the fallback swap,
    and removes stale temp folders of processes that no longer run.
    """
    dst = Path(target)
    done: list[str] = []
    if not dst.parent.is_dir():
        return done
    pattern = re.compile(rf"^\.{re.escape(dst.name)}({re.escape(_TMP_TAG)}|{re.escape(_OLD_TAG)})(\d+)-[0-9a-f]+$")
    leftovers = []
    for entry in dst.parent.iterdir():
        m = pattern.match(entry.name)
        if m and entry.is_dir() and not _alive(int(m.group(2))):
            leftovers.append((m.group(1), entry))
    backups = sorted((p for tag, p in leftovers if tag == _OLD_TAG), key=lambda p: p.stat().st_mtime)
    if not dst.exists() and backups:
        os.rename(backups[-1], dst)
        done.append(f"restored {dst} from {backups[-1].name}")
        backups = backups[:-1]
    for _, path in leftovers:
        if path.exists() and path != dst:
            _remove(path)
            done.append(f"removed stale {path.name}")
    return done


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)
