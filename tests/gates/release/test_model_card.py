"""Gate model-card: Hub metadata, the license carried from the base, an adapter's base as a Hub ID; the card writer."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sftgate.gates.frame.core import Stage, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.report import Report
from sftgate.gates.release import model_card, release
from sftgate.gates.release.model_card import parse_card
from sftgate.runners.pipeline.model_card import write_card_if_missing
from tests.conftest import FIXTURES

REL = FIXTURES / "release"

CASES = [
    # (fixture, expected rules, reason)
    ("clean", [], "a card the Hub accepts, base as in the manifest, a license"),
    ("model_card_invalid", ["model_card_invalid"] * 2, "base_model is a local path, pipeline_tag is not a Hub task"),
    ("license_missing", ["license_missing"], "no license in the card"),
    ("adapter_base_not_hub_id", ["adapter_base_not_hub_id"], "adapter_config names a local base folder"),
    ("manifest_mismatch_none", [], "a valid card, no manifest to compare the base with"),
]


@pytest.mark.parametrize(("fixture", "expected", "reason"), CASES, ids=[c[0] for c in CASES])
def test_model_card_rules(fixture, expected, reason):
    result = run_gate(model_card.GATE, Stage.RELEASE, model_card.check, model_dir=REL / fixture)
    assert sorted(f.rule for f in result.findings) == expected, reason
    assert result.status is (Status.FAIL if expected else Status.PASS)
    codes = {r.name: r.code for r in model_card.RULES}
    assert all(f.code == codes[f.rule] for f in result.findings)


def card(tmp_path, metadata: str, *, manifest_base: str | None = "mistralai/Mistral-7B-v0.3"):
    folder = tmp_path / "release"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(f"---\n{metadata}---\n# model\n")
    if manifest_base:
        (folder / "sftgate-manifest.json").write_text(json.dumps({"files": {}, "base_model": {"id": manifest_base}}))
    return [f for f in model_card.check(model_dir=folder)]


GOOD = "base_model: mistralai/Mistral-7B-v0.3\nlibrary_name: transformers\nlicense: apache-2.0\npipeline_tag: text-generation\n"

FIELD_CASES = [
    (GOOD, [], "every field the Hub reads"),
    (GOOD.replace("apache-2.0", "Apache 2.0"), [("model_card_invalid", "license")], "not a Hub license id"),
    (GOOD.replace("apache-2.0", "other"), [("model_card_invalid", "license")], "other without license_name/link"),
    (GOOD.replace("mistralai/Mistral-7B-v0.3", "meta-llama/Llama-3.1-8B"), [("model_card_invalid", "base_model")],
     "another base than the manifest's"),
    (GOOD.replace("library_name: transformers\n", ""), [("model_card_invalid", "library_name")], "no library_name"),
    (GOOD + "datasets: not a/valid/id\n", [("model_card_invalid", "datasets")], "a dataset that is not a Hub ID"),
    (GOOD + "language: 3\n", [("model_card_invalid", "language")], "language must be strings"),
    (GOOD + "base_model_relation: cousin\n", [("model_card_invalid", "base_model_relation")], "an unknown relation"),
    ("license: [\n", [("model_card_invalid", None)], "YAML that does not parse"),
    ("- a list\n", [("model_card_invalid", None)], "metadata that is not a mapping"),
]


@pytest.mark.parametrize(("metadata", "expected", "reason"), FIELD_CASES, ids=[c[2] for c in FIELD_CASES])
def test_card_fields(tmp_path, metadata, expected, reason):
    found = card(tmp_path, metadata)
    assert [(f.rule, f.evidence.get("field")) for f in found] == expected, reason


def test_a_missing_base_model_is_suggested_from_the_manifest_or_asked_for(tmp_path):
    """With a base recorded, the suggestion is the line to add; with none (a local-folder base), a
    placeholder for the Hub ID rather than the --write-card command, which could not fill it either."""
    no_base = GOOD.replace("base_model: mistralai/Mistral-7B-v0.3\n", "")
    (known,) = card(tmp_path / "a", no_base)
    assert (known.rule, known.evidence["field"], known.suggestion) == (
        "model_card_invalid", "base_model", "base_model: mistralai/Mistral-7B-v0.3")
    assert known.evidence["hub_id_known"] is True
    (unknown,) = card(tmp_path / "b", no_base, manifest_base=None)
    assert (unknown.rule, unknown.evidence["field"], unknown.evidence["hub_id_known"]) == (
        "model_card_invalid", "base_model", False)


def test_a_card_without_front_matter_is_invalid(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "README.md").write_text("# just a title\n")
    (finding,) = model_card.check(model_dir=folder)
    assert finding.rule == "model_card_invalid" and finding.location.endswith("README.md:1")


@given(st.text(max_size=200))
def test_parse_card_never_raises(text):
    metadata, why = parse_card("---\n" + text + "\n---\n")
    assert (metadata is None) != (why is None)


# --------------------------------------------------------------------------- the writer


def test_written_card_passes_and_keeps_the_manifest_valid(tmp_path):
    folder = tmp_path / "release"
    shutil.copytree(REL / "license_missing", folder)
    (folder / "README.md").unlink()
    manifest = json.loads((folder / "sftgate-manifest.json").read_text())
    del manifest["files"]["README.md"]
    (folder / "sftgate-manifest.json").write_text(json.dumps(manifest))
    written = write_card_if_missing(folder, license="apache-2.0", datasets=["my-org/tickets"])
    assert written == folder / "README.md"
    assert list(model_card.check(model_dir=folder)) == []
    assert [f.rule for f in release.check(model_dir=folder)] == []  # README.md is listed in the manifest
    metadata, _ = parse_card(written.read_text())
    assert metadata["base_model"] == "mistralai/Mistral-7B-v0.3" and metadata["datasets"] == ["my-org/tickets"]
    before = written.read_bytes()
    assert write_card_if_missing(folder, license="mit") is None and written.read_bytes() == before  # never rewritten


def test_license_is_carried_from_the_base_card(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "README.md").write_text("---\nlicense: llama3.1\n---\n# base\n")
    folder = tmp_path / "adapter"
    shutil.copytree(FIXTURES / "artifacts" / "adapter_clean", folder)
    write_card_if_missing(folder, base_dir=base)
    metadata, _ = parse_card((folder / "README.md").read_text())
    assert (metadata["license"], metadata["library_name"], metadata["base_model_relation"]) == ("llama3.1", "peft", "adapter")
    assert metadata["base_model"] == "mistralai/Mistral-7B-v0.3"  # the adapter's own base_model_name_or_path


def test_release_command_writes_the_card(cli, tmp_path):
    folder = tmp_path / "release"
    shutil.copytree(REL / "clean", folder)
    (folder / "README.md").unlink()
    manifest = json.loads((folder / "sftgate-manifest.json").read_text())
    del manifest["files"]["README.md"]
    (folder / "sftgate-manifest.json").write_text(json.dumps(manifest))
    config = tmp_path / "sftgate.yaml"
    config.write_text("model:\n  id: mistralai/Mistral-7B-v0.3\nrelease:\n  license: apache-2.0\n")
    missing = cli("release", str(folder), "--format", "json")
    assert missing.code == 1 and missing.rules() == ["model_card_invalid"]
    assert not (folder / "README.md").exists()  # input untouched without --write-card
    written = cli("release", str(folder), "--config", str(config), "--write-card", "--format", "json")
    assert written.code == 0, written.out
    assert written.report["artifacts"]["model_card"] == str(folder / "README.md")


def test_promotion_blocks_nothing_when_the_card_is_written(tmp_path):
    from sftgate.gates.frame.core import GateResult
    from sftgate.runners.pipeline.release import promote

    report = Report("run", [GateResult("artifacts", Stage.MERGE, Status.PASS, 0.0)])
    result = promote(FIXTURES / "artifacts" / "clean", tmp_path / "r", report=report,
                     extra_manifest={"base_model": {"id": "mistralai/Mistral-7B-v0.3", "revision": "a" * 40}},
                     card={"license": "apache-2.0"})
    assert result.status is Status.PASS
    assert list(model_card.check(model_dir=tmp_path / "r")) == []
