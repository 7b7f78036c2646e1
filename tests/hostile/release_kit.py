"""Helpers for the release-safety and data-loss tests: releases made by promotion, forged manifests,
snapshots of folders, pickles and safetensors files written from scratch."""

from __future__ import annotations

import json
import pickle
import shutil
import struct
from pathlib import Path

from sftgate.gates.frame.core import GateResult, Stage, Status
from sftgate.gates.frame.report import Report
from sftgate.gates.release import release as release_gate
from tests.conftest import FIXTURES

CLEAN_MODEL = FIXTURES / "artifacts" / "clean"
PINNED = {"base_model": {"id": "mistralai/Mistral-7B-v0.3", "revision": "caa1feb0e54d415e2df31207e5f4e273e33509f1"}}
PICKLE = pickle.dumps({"weights": [1, 2, 3]}, protocol=4)  # what a pickle-ish weights file starts with


def passing_report() -> Report:
    return Report("run sftgate.yaml", [
        GateResult("merge-equivalence", Stage.MERGE, Status.PASS, 0.1),
        GateResult("artifacts", Stage.MERGE, Status.PASS, 0.01),
    ])


def model_copy(folder: Path) -> Path:
    """A clean model folder (the artifacts fixture) at ``folder``."""
    shutil.copytree(CLEAN_MODEL, folder)
    return folder


def promoted(source: Path, dst: Path) -> Path:
    from sftgate.runners.pipeline.release import promote

    result = promote(source, dst, report=passing_report(), extra_manifest=PINNED)
    assert result.status is Status.PASS, result.findings
    return dst


def forge_manifest(release: Path) -> None:
    """Rewrite the manifest so it lists exactly the folder's regular files: a release whose only flaw
    is what it holds (as if someone re-signed a hand-edited folder)."""
    path = release / release_gate.MANIFEST_NAME
    manifest = json.loads(path.read_text())
    manifest["files"] = {rel: {"bytes": (release / rel).stat().st_size, "sha256": release_gate.sha256_file(release / rel)}
                         for rel in release_gate.release_files(release)}
    path.write_text(json.dumps(manifest, indent=2))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every regular file under ``folder`` (links not followed) with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def safetensors_bytes(header: dict, data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data
