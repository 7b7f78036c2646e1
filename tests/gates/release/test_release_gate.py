"""Gate ``release``: manifest verifies, recorded gates passed, artifacts safe, revision pinned."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sftgate.gates.frame.core import Severity, Stage, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.release import release
from tests.conftest import FIXTURES

REL = FIXTURES / "release"


def rules_of(folder, **kwargs):
    return sorted({f.rule for f in release.check(model_dir=folder, **kwargs) if f.is_error})


CASES = [
    # (fixture folder, kwargs, expected error rules, reason)
    ("clean", {}, [], "every file matches, every gate passed, base pinned"),
    ("manifest_mismatch", {}, ["manifest_mismatch"], "a file edited and a file added after promotion"),
    ("manifest_mismatch_none", {}, ["manifest_mismatch"], "no manifest at all"),
    ("gate_skipped", {}, ["gate_skipped"], "a required gate recorded as skipped"),
    ("gate_failed", {}, ["gate_failed"], "a recorded gate failed"),
    ("unpinned_base_revision", {}, ["unpinned_base_revision"], "base at 'main', not a commit"),
    ("unpinned_base_revision", {"require_pinned_revision": False}, [], "only a warning when pinning is off"),
    ("clean", {"required_gates": ["strict-json"]}, ["gate_skipped"], "a required gate that never ran"),
]


@pytest.mark.parametrize(("folder", "kwargs", "expected", "reason"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rules_per_fixture(folder, kwargs, expected, reason):
    assert rules_of(REL / folder, **kwargs) == expected, reason


def test_manifest_mismatch_names_each_file():
    findings = [f for f in release.check(model_dir=REL / "manifest_mismatch") if f.rule == "manifest_mismatch"]
    assert sorted(f.location.rsplit("/", 1)[-1] for f in findings) == ["generation_config.json", "notes.txt"]
    assert {f.code for f in findings} == {"REL001"}


def test_release_gate_reuses_the_artifacts_rules(tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(REL / "clean", folder)
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    assert rules_of(folder) == ["manifest_mismatch", "unsafe_weights"]


def test_same_size_change_is_caught_by_the_hash(tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(REL / "clean", folder)
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF  # a flipped bit in the weights: same size, header intact
    (folder / "model.safetensors").write_bytes(bytes(data))
    findings = list(release.check(model_dir=folder))
    assert [f.rule for f in findings] == ["manifest_mismatch"]
    assert "sha256" in findings[0].evidence


def test_manifest_paths_outside_the_folder_are_refused(tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(REL / "clean", folder)
    manifest = json.loads((folder / release.MANIFEST_NAME).read_text())
    manifest["files"]["../outside.txt"] = {"bytes": 1, "sha256": "0" * 64}
    (folder / release.MANIFEST_NAME).write_text(json.dumps(manifest))
    assert rules_of(folder) == ["manifest_mismatch"]


def test_unreadable_manifest_is_a_finding_not_a_crash(tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(REL / "clean", folder)
    (folder / release.MANIFEST_NAME).write_text("{not json")
    result = run_gate("release", Stage.RELEASE, release.check, model_dir=folder)
    assert result.status is Status.FAIL
    assert {f.rule for f in result.findings} == {"manifest_mismatch"}


def test_optional_skip_does_not_block(tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(REL / "gate_skipped", folder)
    manifest = json.loads((folder / release.MANIFEST_NAME).read_text())
    manifest["gates"][-1]["required"] = False  # skipped by gates.skip: reported, not blocking
    (folder / release.MANIFEST_NAME).write_text(json.dumps(manifest))
    assert rules_of(folder) == []


def test_local_base_needs_no_revision(tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(REL / "clean", folder)
    manifest = json.loads((folder / release.MANIFEST_NAME).read_text())
    manifest["base_model"] = {"id": str(tmp_path), "revision": None}
    (folder / release.MANIFEST_NAME).write_text(json.dumps(manifest))
    assert rules_of(folder) == []


def test_unpinned_is_a_warning_when_not_required():
    findings = [f for f in release.check(model_dir=REL / "unpinned_base_revision", require_pinned_revision=False)]
    assert [(f.rule, f.severity) for f in findings] == [("unpinned_base_revision", Severity.WARNING)]


def test_metrics_count_hashed_files():
    result = run_gate("release", Stage.RELEASE, release.check, model_dir=REL / "clean")
    assert result.status is Status.PASS
    assert result.metrics["files"] == result.metrics["files_listed"] == 7  # six model files and the model card
    assert result.metrics["gates_recorded"] == 2


@given(st.text(max_size=50))
def test_is_pinned_only_for_40_hex(revision):
    expected = len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)
    assert release.is_pinned(revision) is expected


@pytest.mark.parametrize(
    ("revision", "pinned", "reason"),
    [
        ("caa1feb0e54d415e2df31207e5f4e273e33509f1", True, "a full commit"),
        ("main", False, "a branch moves"),
        ("v0.3", False, "a tag can be moved"),
        ("caa1feb", False, "a short SHA is ambiguous"),
        ("CAA1FEB0E54D415E2DF31207E5F4E273E33509F1", False, "the Hub reports lower-case SHAs"),
        (None, False, "no revision"),
    ],
)
def test_is_pinned_table(revision, pinned, reason):
    assert release.is_pinned(revision) is pinned, reason
