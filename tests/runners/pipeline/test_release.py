"""Promotion and publishing: atomic, refused unless every gate passed, token never shown."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sftgate.gates.frame.core import Finding, GateResult, Severity, Stage, Status
from sftgate.gates.frame.report import Report
from sftgate.gates.release import release as release_gate
from sftgate.runners.pipeline import folder_swap as swap
from sftgate.runners.pipeline import publish as pub
from sftgate.runners.pipeline import release as rel
from tests.conftest import FIXTURES, REPO
from tests.hostile.release_kit import CLEAN_MODEL, PINNED, passing_report, snapshot

SOURCE = CLEAN_MODEL
TOKEN = "hf_SeCrEtToKeN1234567890abcdef"


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir())


@pytest.fixture
def source(tmp_path) -> Path:
    src = tmp_path / "merged"
    shutil.copytree(SOURCE, src)
    return src


@pytest.fixture
def previous(tmp_path, source) -> Path:
    """An existing release (v1) that every failed promotion must leave byte-identical."""
    dst = tmp_path / "releases" / "model"
    result = rel.promote(source, dst, report=passing_report(), extra_manifest=PINNED)
    assert result.status is Status.PASS
    (source / "generation_config.json").write_text(json.dumps({"eos_token_id": [1, 7]}) + "\n")  # v2 differs
    return dst


# --------------------------------------------------------------------------- promote


def test_promote_writes_folder_and_manifest_that_verifies(tmp_path, source):
    dst = tmp_path / "release"
    result = rel.promote(source, dst, report=passing_report(), extra_manifest=PINNED)
    assert (result.gate, result.stage, result.status) == ("release", Stage.RELEASE, Status.PASS)
    # the source has no model card: promotion writes one, and the manifest lists it like every file
    assert snapshot(dst).keys() == {*snapshot(source).keys(), release_gate.MANIFEST_NAME, "README.md"}
    manifest = json.loads((dst / release_gate.MANIFEST_NAME).read_text())
    assert set(manifest["files"]) == {*snapshot(source), "README.md"}
    assert [g["gate"] for g in manifest["gates"]] == ["merge-equivalence", "artifacts"]
    assert manifest["base_model"] == PINNED["base_model"]
    assert list(release_gate.check(model_dir=dst)) == []
    assert siblings(dst) == ["merged", "release"]  # no temp folder left behind


BLOCKING = [
    # (gate results, expected rule, reason)
    ([GateResult("strict-json", Stage.MERGE, Status.SKIP, 0.0, reason="no schema")], "gate_skipped",
     "a required gate skipped is never a pass"),
    ([GateResult("strict-json", Stage.MERGE, Status.FAIL, 0.1,
                 [Finding("JSON002", "code_fence", Severity.ERROR, "m", "case-1")])], "gate_failed", "a failed gate"),
    ([GateResult("merge-equivalence", Stage.MERGE, Status.ERROR, 0.1, reason="boom")], "gate_failed",
     "a gate that could not run"),
    ([], "gate_skipped", "a report with no gate at all proves nothing"),
]


@pytest.mark.parametrize(("extra", "rule", "reason"), BLOCKING, ids=[b[2] for b in BLOCKING])
def test_promotion_refused_and_previous_release_untouched(tmp_path, source, previous, extra, rule, reason):
    before = snapshot(previous)
    report = passing_report() if extra else Report("run")
    report.gates.extend(extra)
    result = rel.promote(source, previous, report=report, extra_manifest=PINNED)
    assert result.status is Status.FAIL, reason
    assert rule in {f.rule for f in result.findings}
    assert snapshot(previous) == before
    assert siblings(previous) == ["model"]


def test_optional_skip_does_not_block(tmp_path, source):
    report = passing_report()
    report.add(GateResult("eos-behaviour", Stage.ADAPTER, Status.SKIP, 0.0, required=False, reason="gates.skip"))
    assert rel.promote(source, tmp_path / "r", report=report, extra_manifest=PINNED).status is Status.PASS


def test_promote_replaces_previous_release(tmp_path, source, previous):
    result = rel.promote(source, previous, report=passing_report(), extra_manifest=PINNED)
    assert result.status is Status.PASS
    assert json.loads((previous / "generation_config.json").read_text()) == {"eos_token_id": [1, 7]}
    assert list(release_gate.check(model_dir=previous)) == []
    assert siblings(previous) == ["model"]


def test_unsafe_source_is_not_promoted_and_findings_point_at_the_source(tmp_path, source):
    (source / "pytorch_model.bin").write_bytes(b"pickle")
    dst = tmp_path / "release"
    result = rel.promote(source, dst, report=passing_report(), extra_manifest=PINNED)
    assert result.status is Status.FAIL
    assert [f.rule for f in result.findings] == ["unsafe_weights"]
    assert result.findings[0].location == str(source / "pytorch_model.bin")
    assert not dst.exists() and siblings(dst) == ["merged"]


def test_unpinned_base_blocks_promotion_unless_allowed(tmp_path, source):
    unpinned = {"base_model": {"id": "mistralai/Mistral-7B-v0.3", "revision": "main"}}
    result = rel.promote(source, tmp_path / "r", report=passing_report(), extra_manifest=unpinned)
    assert [f.rule for f in result.findings] == ["unpinned_base_revision"]
    result = rel.promote(source, tmp_path / "r", report=passing_report(), extra_manifest=unpinned,
                         require_pinned_revision=False)
    assert result.status is Status.PASS


@pytest.mark.parametrize("target", ["_copy_file", "_write_manifest"])
def test_disk_full_leaves_previous_release_intact(monkeypatch, previous, source, target):
    before = snapshot(previous)
    real = getattr(rel, target)
    calls = []

    def full(*args, **kwargs):
        calls.append(1)
        if len(calls) >= 2 or target == "_write_manifest":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(args[-1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(rel, target, full)
    result = rel.promote(source, previous, report=passing_report(), extra_manifest=PINNED)
    assert (result.status, result.error_exit_code) == (Status.ERROR, 2)
    assert "No space left on device" in (result.reason or "")
    assert snapshot(previous) == before
    assert siblings(previous) == ["model"]  # the temp folder was removed


KILL_MIDWAY = """
import os, signal, sys
from sftgate.runners.pipeline import folder_swap as swap
from sftgate.runners.pipeline import release as rel
from tests.runners.pipeline.test_release import passing_report, PINNED
real, n = rel._copy_file, []
def copy_then_die(src, dst):
    n.append(1)
    if len(n) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst)
rel._copy_file = copy_then_die
rel.promote(sys.argv[1], sys.argv[2], report=passing_report(), extra_manifest=PINNED)
"""

KILL_BETWEEN_RENAMES = """
import os, signal, sys
from sftgate.runners.pipeline import folder_swap as swap
from sftgate.runners.pipeline import folder_swap, release as rel
from tests.runners.pipeline.test_release import passing_report, PINNED
folder_swap._exchange = lambda a, b: False  # a filesystem without RENAME_EXCHANGE: two renames
real = os.rename
def rename_then_die(a, b):
    real(a, b)
    if ".previous-" in str(b):               # the old release moved aside, the new one not yet in
        os.kill(os.getpid(), signal.SIGKILL)
os.rename = rename_then_die
rel.promote(sys.argv[1], sys.argv[2], report=passing_report(), extra_manifest=PINNED)
"""


@pytest.mark.parametrize("script", [KILL_MIDWAY, KILL_BETWEEN_RENAMES], ids=["mid-copy", "between-renames"])
def test_killed_promotion_keeps_previous_release(previous, source, script):
    before = snapshot(previous)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script), str(source), str(previous)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert len(siblings(previous)) == 2  # a leftover temp or backup folder
    rel.recover(previous)  # what the next promotion does first
    assert snapshot(previous) == before
    assert list(release_gate.check(model_dir=previous)) == []
    assert siblings(previous) == ["model"]
    assert rel.promote(source, previous, report=passing_report(), extra_manifest=PINNED).status is Status.PASS
    assert siblings(previous) == ["model"]


def test_sftgate_release_restores_a_release_killed_between_renames(cli, previous, source):
    """A reader never has to wait for the next promotion: `sftgate release DIR` puts it back first."""
    before = snapshot(previous)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILL_BETWEEN_RENAMES), str(source), str(previous)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not previous.exists()  # the window the fallback swap has
    result = cli("release", str(previous), "--format", "json")
    assert result.code in (0, 1) and "release" in result.statuses()
    assert snapshot(previous) == before and siblings(previous) == ["model"]


def test_replace_dir_fallback_without_exchange(monkeypatch, tmp_path):
    monkeypatch.setattr(swap, "_exchange", lambda a, b: False)
    old, new = tmp_path / "t", tmp_path / "n"
    old.mkdir(), new.mkdir()
    (old / "f").write_text("old"), (new / "f").write_text("new")
    (old / "sftgate-merge.json").write_text("{}")  # a folder sftgate made: it may be replaced
    swap.replace_dir(new, old)
    assert (old / "f").read_text() == "new" and sorted(os.listdir(tmp_path)) == ["t"]


# --------------------------------------------------------------------------- publish


class FakeApi:
    def __init__(self, fail: Exception | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.fail = fail

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        if self.fail:
            raise self.fail

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))

        class Info:
            oid = "a" * 40

        return Info()


@pytest.fixture
def released(tmp_path, source) -> Path:
    dst = tmp_path / "release"
    card = {"license": "apache-2.0"}  # the base's license, carried into the card promotion writes
    assert rel.promote(source, dst, report=passing_report(), extra_manifest=PINNED, card=card).status is Status.PASS
    return dst


def test_publish_without_token_is_a_dry_run(released):
    api, said = FakeApi(), []
    files = pub.publish(released, "my-org/model", env={}, api=api, say=said.append)
    assert api.calls == []
    assert files[0] == release_gate.MANIFEST_NAME and set(files[1:]) == {*snapshot(SOURCE), "README.md"}
    assert said[0].startswith("dry run") and len(said) == 1 + len(files)


def test_publish_uploads_with_the_env_token_and_never_prints_it(released):
    api, said = FakeApi(), []
    files = pub.publish(released, "my-org/model", env={"HF_TOKEN": TOKEN}, api=api, say=said.append)
    assert [name for name, _ in api.calls] == ["create_repo", "upload_folder"]
    create, upload = api.calls[0][1], api.calls[1][1]
    assert create["token"] == upload["token"] == TOKEN and create["private"] is True
    assert upload["folder_path"] == str(released) and upload["repo_id"] == "my-org/model"
    assert len(files) == 8  # the source's 6 files, the model card promotion wrote, the manifest
    assert TOKEN not in "\n".join(said)


def test_publish_error_hides_the_token(released):
    api = FakeApi(fail=RuntimeError(f"401 Unauthorized for token {TOKEN}"))
    with pytest.raises(pub.PublishError) as info:
        pub.publish(released, "my-org/model", env={"HF_TOKEN": TOKEN}, api=api, say=lambda _m: None)
    assert TOKEN not in str(info.value) and info.value.exit_code == 2


def test_publish_refuses_a_folder_that_fails_the_gate(released):
    (released / "notes.txt").write_text("added after promotion")
    api = FakeApi()
    with pytest.raises(pub.PublishRefused) as info:
        pub.publish(released, "my-org/model", env={"HF_TOKEN": TOKEN}, api=api, say=lambda _m: None)
    assert api.calls == [] and info.value.exit_code == 1


@pytest.mark.parametrize("repo_id", ["my-org-model", "a/b/c", "org/na--me", "https://huggingface.co/org/m", ""])
def test_publish_rejects_bad_repo_ids(released, repo_id):
    from sftgate.gates.frame.core import UsageError

    with pytest.raises(UsageError):
        pub.publish(released, repo_id, env={}, api=FakeApi(), say=lambda _m: None)


# --------------------------------------------------------------------------- sftgate release


CLI_CASES = [
    # (fixture, extra args, exit code, rules, reason)
    ("clean", [], 0, [], "a verified release passes"),
    ("manifest_mismatch", [], 1, ["manifest_mismatch"], "files changed after promotion"),
    ("gate_skipped", [], 1, ["gate_skipped"], "a required gate was skipped"),
    ("unpinned_base_revision", [], 1, ["unpinned_base_revision"], "base revision is a branch"),
    ("unpinned_base_revision", ["--allow-unpinned"], 0, ["unpinned_base_revision"], "warning only"),
    ("clean", ["--require-gate", "strict-json"], 1, ["gate_skipped"], "a required gate never ran"),
]


@pytest.mark.parametrize(("fixture", "extra", "code", "rules", "reason"), CLI_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CLI_CASES)])
def test_release_command(cli, fixture, extra, code, rules, reason):
    result = cli("release", str(FIXTURES / "release" / fixture), *extra, "--format", "json")
    assert result.code == code, reason
    assert sorted(set(result.rules())) == rules
    assert result.statuses() == {"release": "pass" if code == 0 else "fail", "model-card": "pass"}


def test_release_command_missing_folder_exits_2(cli, tmp_path):
    result = cli("release", str(tmp_path / "nope"), "--format", "json")
    assert result.code == 2 and result.statuses() == {"release": "error", "model-card": "error"}


def test_release_command_publish_dry_run(cli):
    result = cli("release", str(FIXTURES / "release" / "clean"), "--publish", "my-org/model", "--format", "json")
    assert result.code == 0
    assert result.report["artifacts"]["publish"].startswith("dry run")
    assert "config.json" in result.err


def test_release_command_publish_with_token(cli, monkeypatch):
    api = FakeApi()
    monkeypatch.setattr(pub, "_hf_api", lambda token: api)
    result = cli("release", str(FIXTURES / "release" / "clean"), "--publish", "my-org/model", "--format", "json",
                 env={"HF_TOKEN": TOKEN})
    assert result.code == 0 and [n for n, _ in api.calls] == ["create_repo", "upload_folder"]
    assert TOKEN not in result.out + result.err
    assert result.report["artifacts"]["publish"].startswith("published")


def test_release_command_does_not_publish_a_failing_folder(cli, monkeypatch):
    api = FakeApi()
    monkeypatch.setattr(pub, "_hf_api", lambda token: api)
    result = cli("release", str(FIXTURES / "release" / "gate_failed"), "--publish", "my-org/model",
                 "--format", "json", env={"HF_TOKEN": TOKEN})
    assert result.code == 1 and api.calls == [] and "publish" not in result.report.get("artifacts", {})
    assert TOKEN not in result.out + result.err


def test_release_command_publish_error_exits_2_without_token(cli, monkeypatch):
    monkeypatch.setattr(pub, "_hf_api", lambda token: FakeApi(fail=RuntimeError(f"bad token {TOKEN}")))
    result = cli("release", str(FIXTURES / "release" / "clean"), "--publish", "my-org/model", "--format", "json",
                 env={"HF_TOKEN": TOKEN})
    assert result.code == 2 and TOKEN not in result.out + result.err


def test_release_command_publish_needs_a_repo(cli):
    result = cli("release", str(FIXTURES / "release" / "clean"), "--publish")
    assert result.code == 2


def test_release_command_reads_the_config(cli, tmp_path):
    config = tmp_path / "sftgate.yaml"
    config.write_text("sftgate: 1\nmodel:\n  id: org/base\nrelease:\n  repo_id: my-org/from-config\n"
                      "  require_pinned_revision: false\n")
    result = cli("release", str(FIXTURES / "release" / "unpinned_base_revision"), "--config", str(config),
                 "--publish", "--format", "json")
    assert result.code == 0 and result.rules() == ["unpinned_base_revision"]  # a warning under this config
    assert result.report["artifacts"]["publish"].endswith("my-org/from-config")
