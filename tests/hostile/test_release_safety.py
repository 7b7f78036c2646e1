"""Issue 14, defect 2: nothing unsafe ships in a release that passes the gate.

Each unsafe file kind goes through `sftgate release` (a release whose manifest was forged to list
it, so the finding comes from what the folder holds) and through promotion (a merged folder that
holds it is never promoted). Symlinks in and out of the folder, special files, the publish dry run,
the fingerprint that resume relies on, and the safetensors header, field by field.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from sftgate.gates.frame.core import Status
from sftgate.gates.merge import artifacts, folder_contents
from sftgate.gates.readers.model_folder import list_model_folder
from sftgate.gates.release import release as release_gate
from sftgate.gates.train.provenance_manifest import model_fingerprint
from sftgate.runners.pipeline import publish as pub
from sftgate.runners.pipeline import release as rel
from tests.hostile.release_kit import (
    PICKLE,
    PINNED,
    forge_manifest,
    model_copy,
    passing_report,
    promoted,
)

AUTO_MAP = {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}
# (path in the folder, bytes, the rule it must raise)
UNSAFE_FILES = [
    (".cache/evil.bin", PICKLE, "unsafe_weights"),
    ("training_args.joblib", PICKLE, "unsafe_weights"),
    ("state.dill", PICKLE, "unsafe_weights"),
    ("embeddings.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '|O'", "unsafe_weights"),
    ("embeddings.npz", b"PK\x03\x04zip", "unsafe_weights"),
    ("checkpoint.tar", b"ustar" + PICKLE, "unsafe_weights"),
    ("pytorch_model.bin.1", PICKLE, "unsafe_weights"),
    ("flax_model.msgpack", b"\x82\xa5embed", "unsafe_weights"),
    ("tf_model.h5", b"\x89HDF\r\n\x1a\n", "unsafe_weights"),
    ("model.ckpt", PICKLE, "unsafe_weights"),
    ("notes.txt", PICKLE, "unsafe_weights"),  # a pickle under an innocent name
    ("extra/settings.json", b"PK\x03\x04" + PICKLE, "unsafe_weights"),  # a zip under a JSON name
    ("kernels.so", b"\x7fELF\x02\x01\x01", "remote_code"),
    ("__pycache__/modeling_x.cpython-311.pyc", b"\xa7\r\r\n", "remote_code"),
    ("modeling_x.py", b"import os\nos.system('id')\n", "remote_code"),
    ("sub/tokenizer_config.json", json.dumps({"text": {"deep": [{"auto_map": AUTO_MAP}]}}).encode(), "remote_code"),
    ("pipeline.json", json.dumps({"custom_pipelines": {"x": {"impl": "x.Pipe"}}}).encode(), "remote_code"),
    (".notes", b"a dot-file", "unexpected_file"),
    (".git/config", b"[core]", "unexpected_file"),
    ("model.gguf", b"GGUF\x03", "unexpected_file"),
    ("x\n::error::FORGED.json", b"{}", "unexpected_file"),
]
# (how, the rule): entries that are not regular files
ODD_ENTRIES = ["link_outside", "link_inside", "dangling_link", "link_loop", "fifo"]


def plant(folder: Path, rel: str, data: bytes) -> None:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def plant_odd(folder: Path, how: str, outside: Path) -> None:
    if how == "link_outside":
        secret = outside / "shadow"
        secret.write_text("root:$6$secret")
        os.symlink(secret, folder / ".notes")  # the defect: a 0644 copy of the target shipped
    elif how == "link_inside":
        os.symlink("config.json", folder / "alias.json")
    elif how == "dangling_link":
        os.symlink("/nonexistent/sftgate", folder / "gone.json")
    elif how == "link_loop":
        os.symlink("loop_b", folder / "loop_a")
        os.symlink("loop_a", folder / "loop_b")
    elif how == "fifo":
        os.mkfifo(folder / "pipe.json")


@pytest.fixture
def release(tmp_path) -> Path:
    return promoted(model_copy(tmp_path / "merged"), tmp_path / "release")


# --------------------------------------------------------------------------- sftgate release


@pytest.mark.parametrize(("rel_path", "data", "rule"), UNSAFE_FILES, ids=[repr(f[0]) for f in UNSAFE_FILES])
def test_release_command_fails_on_each_unsafe_file(cli, release, rel_path, data, rule):
    plant(release, rel_path, data)
    forge_manifest(release)
    result = cli("release", str(release), "--publish", "my-org/model", "--format", "json")
    assert result.code == 1
    assert rule in result.rules()
    assert "publish" not in result.report.get("artifacts", {})  # the dry run does not even list it


@pytest.mark.parametrize("how", ODD_ENTRIES)
def test_release_command_fails_on_links_and_special_files(cli, release, tmp_path, how):
    plant_odd(release, how, tmp_path)
    forge_manifest(release)
    result = cli("release", str(release), "--publish", "my-org/model", "--format", "json")
    assert result.code == 1
    assert "not_a_regular_file" in result.rules()
    assert "publish" not in result.report.get("artifacts", {})


def test_a_non_utf8_file_name_is_unexpected(cli, release):
    with open(os.path.join(os.fsencode(release), b"caf\xe9.json"), "wb") as handle:
        handle.write(b"{}")
    result = cli("release", str(release), "--format", "json")
    assert result.code == 1 and "unexpected_file" in result.rules()


CONTENT_RULES = {"unsafe_weights", "remote_code", "unexpected_file", "not_a_regular_file", "corrupt_artifact"}


def test_the_clean_release_raises_no_content_rule(cli, release):
    result = cli("release", str(release), "--format", "json")
    assert not CONTENT_RULES & set(result.rules())


# --------------------------------------------------------------------------- promotion


@pytest.mark.parametrize(("rel_path", "data", "rule"), UNSAFE_FILES[::2], ids=[repr(f[0]) for f in UNSAFE_FILES[::2]])
def test_a_source_holding_an_unsafe_file_is_never_promoted(tmp_path, rel_path, data, rule):
    source = model_copy(tmp_path / "merged")
    plant(source, rel_path, data)
    result = rel.promote(source, tmp_path / "release", report=passing_report(), extra_manifest=PINNED)
    assert result.status is Status.FAIL
    assert rule in {f.rule for f in result.findings}
    assert all(str(source) in f.location for f in result.findings)  # pointing at the file to fix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged"]  # no release, no temp folder


def test_the_reported_case_pickle_in_a_dot_folder_and_a_link_to_shadow(tmp_path):
    """The defect as found: merged/.cache/evil.bin and merged/.notes -> /etc/shadow both shipped."""
    source = model_copy(tmp_path / "merged")
    plant(source, ".cache/evil.bin", PICKLE)
    plant_odd(source, "link_outside", tmp_path)
    result = rel.promote(source, tmp_path / "release", report=passing_report(), extra_manifest=PINNED)
    assert result.status is Status.FAIL
    assert {f.rule for f in result.findings} == {"unsafe_weights", "not_a_regular_file"}
    assert not (tmp_path / "release").exists()


@pytest.mark.parametrize("how", ODD_ENTRIES)
def test_a_source_with_a_link_or_special_file_is_never_promoted(tmp_path, how):
    source = model_copy(tmp_path / "merged")
    plant_odd(source, how, tmp_path)
    result = rel.promote(source, tmp_path / "release", report=passing_report(), extra_manifest=PINNED)
    assert result.status is Status.FAIL and "not_a_regular_file" in {f.rule for f in result.findings}
    assert not (tmp_path / "release").exists()


def test_promotion_copies_without_following_a_link_swapped_in_after_the_walk(tmp_path, monkeypatch):
    """A file replaced by a link between the walk and the copy is refused, not followed."""
    source = model_copy(tmp_path / "merged")
    secret = tmp_path / "secret"
    secret.write_text("secret")
    real = rel._copy_tree

    def swap_then_copy(listing, dst):
        (source / "chat_template.jinja").unlink()
        os.symlink(secret, source / "chat_template.jinja")
        return real(listing, dst)

    monkeypatch.setattr(rel, "_copy_tree", swap_then_copy)
    result = rel.promote(source, tmp_path / "release", report=passing_report(), extra_manifest=PINNED)
    assert (result.status, result.error_exit_code) == (Status.ERROR, 2)
    assert not (tmp_path / "release").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged", "secret"]


# --------------------------------------------------------------------------- publish


class RecordingApi:
    def __init__(self):
        self.uploads: list[dict] = []

    def create_repo(self, repo_id, **kwargs):
        pass

    def upload_folder(self, **kwargs):
        self.uploads.append(kwargs)


def test_publish_lists_and_uploads_exactly_the_allowed_files(release):
    said: list[str] = []
    files = pub.publish(release, "my-org/model", env={}, api=RecordingApi(), say=said.append, gate_checked=True)
    assert files == [release_gate.MANIFEST_NAME, *release_gate.release_files(release)]
    assert all(folder_contents.classify(f) != "unexpected" for f in files)
    assert [line.strip() for line in said[1:]] == files  # the dry run lists them, one a line
    api = RecordingApi()
    uploaded = pub.publish(release, "my-org/model", env={"HF_TOKEN": "hf_x"}, api=api, say=lambda _m: None,
                           gate_checked=True)
    assert api.uploads[0]["allow_patterns"] == uploaded == files  # nothing else in the folder is sent


def test_publish_refuses_a_folder_that_gained_a_file_after_the_gate(release):
    plant(release, ".cache/evil.bin", PICKLE)
    forge_manifest(release)
    api = RecordingApi()
    with pytest.raises(pub.PublishRefused):
        pub.publish(release, "my-org/model", env={"HF_TOKEN": "hf_x"}, api=api, say=lambda _m: None)
    assert api.uploads == []


# --------------------------------------------------------------------------- one walk everywhere


def test_the_gate_the_manifest_the_fingerprint_and_promotion_see_the_same_files(tmp_path):
    folder = model_copy(tmp_path / "m")
    before = model_fingerprint(folder)["sha256"]
    plant(folder, ".cache/deep/x.json", b"{}")
    listing = list_model_folder(folder)
    assert ".cache/deep/x.json" in listing.files
    assert ".cache/deep/x.json" in release_gate.release_files(folder)
    assert "unexpected_file" in {f.rule for f in artifacts.check(model_dir=folder)}
    after_file = model_fingerprint(folder)["sha256"]
    os.symlink("config.json", folder / ".alias")
    after_link = model_fingerprint(folder)["sha256"]
    assert len({before, after_file, after_link}) == 3  # resume notices both


def test_the_walk_never_follows_a_linked_folder(tmp_path):
    folder = model_copy(tmp_path / "m")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "stolen.json").write_text("{}")
    os.symlink(outside, folder / "linked")
    listing = list_model_folder(folder)
    assert not any(f.startswith("linked") for f in listing.files)
    assert [(o.rel, o.what) for o in listing.odd] == [("linked", "symlink")]


def test_a_clean_folder_passes_every_content_rule(tmp_path):
    folder = model_copy(tmp_path / "m")
    shutil.copy(folder / "config.json", folder / "preprocessor_config.json")
    for rel_path in ("README.md", "LICENSE", "tokenizer.model.v3", "spiece.model", "assets/figure.png",
                     "additional_chat_templates/tool.jinja", "merges.txt"):
        plant(folder, rel_path, b"text")
    assert [f.rule for f in artifacts.check(model_dir=folder)] == []


# --------------------------------------------------------------------------- end to end through `sftgate run`


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    from tests.hostile.tiny_run import finished_project

    return finished_project(tmp_path_factory)


def test_resume_sees_files_planted_in_the_merged_folder_and_the_release_never_holds_them(cli, finished, tmp_path):
    """The defect end to end: a pickle in merged/.cache and a link to a secret, then `sftgate run` again."""
    from tests.hostile.tiny_run import copy_project

    project = copy_project(finished, tmp_path / "d")
    merged = project / "run" / "merged"
    plant(merged, ".cache/evil.bin", PICKLE)
    plant_odd(merged, "link_outside", tmp_path)
    result = cli("run", str(project / "sftgate.yaml"), "--format", "json")
    assert result.code == 0, result.err
    merge_stage = [g for g in result.report["gates"] if g["stage"] == "merge"]
    assert merge_stage and not any("resumed" in (g.get("reason") or "") for g in merge_stage)  # the change was seen
    release = project / "run" / "release"
    assert not any(part in f for f in release_gate.release_files(release) for part in (".cache", ".notes"))
    assert not (release / ".notes").is_symlink() and not (merged / ".cache").exists()
    assert not CONTENT_RULES & set(result.rules())
