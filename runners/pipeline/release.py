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
  fallback swap on a filesystem without ``renameat2(RENAME_EXCHANGE)``);
- a release folder sftgate did not make, or one that holds the source, the config or the data:
  refused before anything is written (exit 2, :func:`~sftgate.runners.pipeline.folder_swap.ensure_replaceable`).

Only the regular files of the one walk of the source (:mod:`sftgate.gates.readers.model_folder`)
are copied, each opened without following links; a source with a symlink, a special file, or a
file the release allow-list refuses is not promoted (the artifacts rules, pointing at the source).
The atomic folder swap is :mod:`sftgate.runners.pipeline.folder_swap`.

Example::

    from sftgate.runners.pipeline.release import promote
    result = promote("runs/x/merged", "releases/x", report=report,
                     extra_manifest={"base_model": {"id": "mistralai/Mistral-7B-v0.3", "revision": sha}})
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from sftgate.gates import __version__
from sftgate.gates.frame.core import Finding, GateResult, InputError, Stage, Status
from sftgate.gates.frame.report import Report
from sftgate.gates.merge.artifacts import content_findings
from sftgate.gates.readers.model_folder import FolderListing, list_model_folder
from sftgate.gates.release import release as release_gate
from sftgate.runners.pipeline.folder_swap import (
    Protected,
    ensure_replaceable,
    fsync_dir,
    recover,
    remove_owned,
    replace_dir,
    temp_dir_for,
)
from sftgate.runners.pipeline.model_card import write_card_if_missing

GATE = "release"
CHUNK = 1 << 20


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
    protected: Iterable[Protected] = (),
    card: dict[str, Any] | None = None,
) -> GateResult:
    """Promote ``source_dir`` to ``release_dir`` when every gate of ``report`` passed.

    Returns the release stage's gate result (gate ``release``): ``pass`` when the release folder now
    holds the new model and its manifest; ``fail`` when a gate blocks (nothing written);
    ``error`` when writing failed (nothing promoted, previous release untouched, exit 2).
    ``extra_manifest`` keys (e.g. ``base_model``, ``provenance``) are added to the manifest.
    ``protected``: ``(path, what)`` pairs the release folder must not be or hold (the config, the data).
    A source without ``README.md`` gets a model card (``card``: the settings of
    :func:`~sftgate.runners.pipeline.model_card.write_card_if_missing`, e.g. ``license``).
    """
    start = time.perf_counter()
    src, dst = Path(source_dir), Path(release_dir)
    metrics: dict[str, Any] = {"release_dir": str(dst)}

    def result(status: Status, findings: list[Finding], reason: str | None = None, exit_code: int = 3) -> GateResult:
        return GateResult(GATE, Stage.RELEASE, status, time.perf_counter() - start, findings,
                          reason=reason, metrics=metrics, error_exit_code=exit_code)

    if not src.is_dir():
        raise InputError(f"{src}: model folder to promote not found", hint="promote the merged model or adapter folder")
    if src.resolve() in dst.resolve().parents:
        raise InputError(f"{dst}: the release folder must not be inside the folder it promotes ({src})",
                         hint="put the release beside the merged model, e.g. run/release")
    recover(dst)
    ensure_replaceable(dst, protected=[(src, "the model folder being promoted"), *protected])
    findings = list(blocking_findings(report))
    if findings:
        return result(Status.FAIL, findings, f"nothing promoted: a gate blocks; {_previous(dst)}")
    listing = list_model_folder(src)
    unsafe = [f for f in content_findings(listing) if f.is_error]
    if unsafe:
        return result(Status.FAIL, unsafe, f"nothing promoted: the source holds files a release may not; {_previous(dst)}")

    tmp = temp_dir_for(dst)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        files = _copy_tree(listing, tmp)
        manifest = build_manifest(files, report, extra_manifest, source=src)
        _write_manifest(tmp, manifest)
        write_card_if_missing(tmp, name=dst.name, **(card or {}))  # listed in the manifest, like every file
        verify_metrics: dict[str, Any] = {}
        problems = [
            f for f in release_gate.check(
                model_dir=tmp, profile=profile, require_pinned_revision=require_pinned_revision, metrics=verify_metrics
            )
        ]
        problems = [_relocate(f, tmp, src) for f in problems]
        metrics.update(files=len(files), bytes=sum(e["bytes"] for e in files.values()))
        if any(f.is_error for f in problems):
            remove_owned(tmp)
            return result(Status.FAIL, problems, f"nothing promoted: the release gate failed; {_previous(dst)}")
        fsync_dir(tmp)
        replace_dir(tmp, dst)
    except OSError as exc:
        remove_owned(tmp)
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        where = f" ({exc.filename})" if exc.filename else ""
        return result(
            Status.ERROR, [],
            f"could not write the release: {why}{where}; nothing promoted; {_previous(dst)}",
            exit_code=2,
        )
    except BaseException:
        remove_owned(tmp)
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


def _copy_tree(listing: FolderListing, dst: Path) -> dict[str, dict[str, Any]]:
    """Copy the regular files of ``listing`` (never a link: they are refused before), hashing while copying."""
    files: dict[str, dict[str, Any]] = {}
    for rel in listing.files:
        if rel == release_gate.MANIFEST_NAME:
            continue  # a new manifest is written
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        size, digest = _copy_file(listing.path(rel), target)
        files[rel] = {"bytes": size, "sha256": digest}
    return files


def _open_regular(path: Path) -> Any:
    """Open ``path`` for reading without following a link, and only if it is a regular file."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is no longer a regular file")
    return os.fdopen(fd, "rb")


def _copy_file(src: Path, dst: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with _open_regular(src) as reader, open(dst, "xb") as writer:
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


__all__ = ["blocking_findings", "build_manifest", "promote", "recover", "replace_dir", "temp_dir_for"]
