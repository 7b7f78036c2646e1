"""`sftgate merge` output is servable as it stands: `sftgate release --profile tgi` finds no template it put in the
wrong place (TGI reads the chat template only from tokenizer_config.json; transformers 5 saves chat_template.jinja)."""

from __future__ import annotations

import json
import shutil

import pytest

from sftgate.gates.frame.core import GateResult, Stage, Status
from sftgate.gates.frame.report import Report
from sftgate.gates.merge import serving_profiles
from sftgate.gates.readers.tokenizer_io import load_tokenizer
from sftgate.runners.pipeline.release import promote
from sftgate.runners.work.merge import template_in_tokenizer_config
from tests.conftest import FIXTURES, run_cli
from tests.runners.work.tiny_merge import build_adapter, build_base

pytestmark = pytest.mark.usefixtures("one_thread")

TEMPLATE_LOCATION = "chat_template_not_in_tokenizer_config"


@pytest.fixture(scope="module")
def merged(one_thread, tmp_path_factory):
    """`sftgate merge CONFIG` on a tiny base + adapter, as a user runs it."""
    root = tmp_path_factory.mktemp("merge-serving")
    base = build_base(root / "base")
    build_adapter(root / "run" / "adapter", base)
    shutil.copy(FIXTURES / "merge" / "cases.jsonl", root / "cases.jsonl")
    config = root / "sftgate.yaml"
    config.write_text(f"sftgate: 1\nmodel:\n  id: {base}\ndata:\n  cases: cases.jsonl\ntrain:\n  output_dir: run\n")
    result = run_cli("merge", str(config), "--format", "json")
    assert result.code == 0, result.out + result.err
    return {"root": root, "base": base, "merged": root / "run" / "merged"}


def tgi_rules(folder):
    names = {p.name for p in folder.iterdir()}
    return [f.rule for f in serving_profiles.serving_findings(folder, names, "tgi", "model") if f.is_error]


def test_merge_puts_the_template_where_tgi_reads_it(merged):
    folder = merged["merged"]
    jinja = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    assert json.loads((folder / "tokenizer_config.json").read_text())["chat_template"] == jinja
    assert "chat_template" not in json.loads((merged["base"] / "tokenizer_config.json").read_text())  # not the base's
    assert load_tokenizer(folder).chat_template == jinja  # transformers reads the same template
    assert TEMPLATE_LOCATION not in tgi_rules(folder)


def test_merge_then_release_with_the_tgi_profile_passes(merged, tmp_path):
    """The user's path: merge, promote with release.profile tgi, `sftgate release DIR --profile tgi`."""
    report = Report("run", [GateResult("artifacts", Stage.MERGE, Status.PASS, 0.0)])
    promoted = promote(merged["merged"], tmp_path / "release", report=report, profile="tgi",  # as recorded by `run`
                       extra_manifest={"base_model": {"id": "mistralai/Mistral-7B-v0.3", "revision": "a" * 40}}, card={"license": "apache-2.0"})
    assert (promoted.status, [f.rule for f in promoted.findings if f.is_error]) == (Status.PASS, [])
    result = run_cli("release", str(tmp_path / "release"), "--profile", "tgi", "--format", "json")
    assert result.code == 0, result.out
    assert TEMPLATE_LOCATION not in result.rules()


def test_named_templates_are_written_as_tgi_reads_them(merged, tmp_path):
    """A tokenizer with named templates (default + tool_use): TGI reads the list form and serves ``default``."""
    tok = load_tokenizer(merged["merged"])
    tok.chat_template = {"default": tok.chat_template, "tool_use": "{{ messages[0]['content'] }}"}
    folder = tmp_path / "named"
    tok.save_pretrained(folder)
    assert TEMPLATE_LOCATION in tgi_rules(folder)  # transformers alone: chat_template.jinja only
    template_in_tokenizer_config(folder, tok.chat_template)
    entries = json.loads((folder / "tokenizer_config.json").read_text())["chat_template"]
    assert sorted(e["name"] for e in entries) == ["default", "tool_use"]
    assert tgi_rules(folder) == []
    assert load_tokenizer(folder).chat_template == tok.chat_template


def test_a_stale_default_in_the_list_is_still_caught(merged, tmp_path):
    folder = tmp_path / "stale"
    shutil.copytree(merged["merged"], folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = [{"name": "default", "template": "{{ 'old' }}"}]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    assert tgi_rules(folder) == [TEMPLATE_LOCATION]
