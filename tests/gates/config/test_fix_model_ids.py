"""fix-model-ids: confident fixes only, in place, nothing else in the file changes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.config import fix_model_ids
from sftgate.gates.frame.core import InputError
from tests.conftest import FIXTURES

ENV = {"HF_HUB_CACHE": "/nonexistent-sftgate-cache"}

# (file name, text, expected text after the fix, reason)
CASES = [
    ("job.json", '{"model": {"name": "mistralai-Mistral-7B-Instruct"}}\n',
     '{"model": {"name": "mistralai/Mistral-7B-Instruct"}}\n', "the postmortem's job.json"),
    ("job.json", '{\n\t"z": 1,\n\t"model_name_or_path": "https://huggingface.co/Qwen/Qwen2.5-0.5B",\n\t"a": [1, 2]\n}',
     '{\n\t"z": 1,\n\t"model_name_or_path": "Qwen/Qwen2.5-0.5B",\n\t"a": [1, 2]\n}', "key order, tabs, no final newline"),
    ("job.yaml", "# keep me\nbase_model: gpt2  # legacy\nlr: 1e-4\n",
     "# keep me\nbase_model: openai-community/gpt2  # legacy\nlr: 1e-4\n", "YAML comments stay"),
    ("job.yaml", "model:\n  name: 'mistralai-Mistral-7B'\n  revision: \"main \"\n",
     "model:\n  name: 'mistralai/Mistral-7B'\n  revision: \"main\"\n", "quoting style stays; revision stripped"),
    ("job.yaml", "model_name_or_path: models--Qwen--Qwen2.5-0.5B\r\nepochs: 2\r\n",
     "model_name_or_path: Qwen/Qwen2.5-0.5B\r\nepochs: 2\r\n", "CRLF line endings stay"),
    ("sftgate.yaml", "sftgate: 1\nmodel:\n  id: ' Qwen/Qwen2.5-0.5B-Instruct'\n",
     "sftgate: 1\nmodel:\n  id: 'Qwen/Qwen2.5-0.5B-Instruct'\n", "an sftgate config: model.id"),
    ("job.yaml", "base_model: Mistral-7B-v0.1\n", "base_model: Mistral-7B-v0.1\n", "a family guess is not applied"),
    ("job.yaml", "base_model: acme-Model-7B\n", "base_model: acme-Model-7B\n", "the heuristic is not applied"),
    ("job.yaml", "base_model: org/ok\n", "base_model: org/ok\n", "nothing to fix"),
    ("job.yml", "base_model: &base mistralai-Mistral-7B-Instruct-v0.3\nbase_model_config: *base\nsequence_len: 512\n",
     "base_model: &base mistralai/Mistral-7B-Instruct-v0.3\nbase_model_config: *base\nsequence_len: 512\n",
     "a YAML anchor stays, its alias reads the fixed value"),
    ("job.yml", "base_model: &base mistralai-Mistral-7B\nsequence_len: 512\n",
     "base_model: &base mistralai/Mistral-7B\nsequence_len: 512\n", "an anchor without alias is kept"),
    ("job.yml", "base_model: !!str mistralai-Mistral-7B\n", "base_model: !!str mistralai/Mistral-7B\n", "a tag stays"),
    ("job.yaml", "model_name_or_path: org/m\nadapter_name_or_path: alice/lora-a, mistralai-my-lora\nstage: sft\n"
     "finetuning_type: lora\ncutoff_len: 512\n",
     "model_name_or_path: org/m\nadapter_name_or_path: alice/lora-a, mistralai/my-lora\nstage: sft\n"
     "finetuning_type: lora\ncutoff_len: 512\n", "LLaMA-Factory's comma list: one entry fixed in place"),
    ("train.yaml", "model_id_or_path: mistralai-Mistral-7B-v0.3\nrun_dir: runs/x\nseq_len: 4096\nnum_microbatches: 1\n",
     "model_id_or_path: mistralai/Mistral-7B-v0.3\nrun_dir: runs/x\nseq_len: 4096\nnum_microbatches: 1\n",
     "mistral-finetune's model_id_or_path"),
]


@pytest.mark.parametrize(("name", "text", "expected", "reason"), CASES, ids=[c[3] for c in CASES])
def test_fix(tmp_path, name, text, expected, reason):
    path = tmp_path / name
    path.write_bytes(text.encode())
    plan = fix_model_ids.plan(path, env=ENV)
    assert plan.fixed == expected, reason
    assert plan.changed == (text != expected)
    assert path.read_bytes() == text.encode(), "plan writes nothing"
    bak = fix_model_ids.write(plan)
    assert path.read_bytes() == expected.encode()
    if plan.changed:
        assert bak is not None and bak.read_bytes() == text.encode()
        assert not fix_model_ids.plan(path, env=ENV).changed, "idempotent"
    else:
        assert bak is None and not (tmp_path / f"{name}.bak").exists()


def test_guesses_are_reported_as_unfixed(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("base_model: Mistral-7B-v0.1\nmodel_name_or_path: ./nope\n")
    plan = fix_model_ids.plan(path, env=ENV)
    assert [(f.rule, f.severity.value) for f in plan.unfixed] == [("missing_namespace", "warning"),
                                                                    ("local_path_missing", "warning")]


def test_bom_is_kept(tmp_path):
    path = tmp_path / "job.json"
    path.write_bytes(b'\xef\xbb\xbf{"base_model": "gpt2"}')
    fix_model_ids.write(fix_model_ids.plan(path, env=ENV))
    assert path.read_bytes() == b'\xef\xbb\xbf{"base_model": "openai-community/gpt2"}'


def test_diff_names_the_file(tmp_path):
    path = tmp_path / "job.json"
    path.write_text('{"model": {"name": "mistralai-Mistral-7B-Instruct"}}')
    diff = fix_model_ids.plan(path, env=ENV, display="job.json").diff()
    assert diff.startswith("--- a/job.json\n+++ b/job.json\n")
    assert "\\ No newline at end of file" in diff


def test_fixture_axolotl_yaml_keeps_comments(tmp_path):
    source = FIXTURES / "model_id" / "dash_separated_id.yaml"
    path = tmp_path / "axolotl.yaml"
    path.write_text(source.read_text())
    plan = fix_model_ids.plan(path, env=ENV)
    assert [(e.rule.name, e.new) for e in plan.edits] == [("dash_separated_id", "mistralai/Mistral-7B-Instruct-v0.3")]
    old_lines, new_lines = plan.original.splitlines(), plan.fixed.splitlines()
    assert [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b] == [1]
    assert "# dashes instead of a slash" in new_lines[1]


@pytest.mark.parametrize(("content", "reason"), [("{not json", "broken JSON"), (b"\xff\xfe", "not UTF-8")])
def test_bad_input_is_an_input_error(tmp_path, content, reason):
    path = tmp_path / "job.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError):
        fix_model_ids.plan(path)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        fix_model_ids.plan(tmp_path / "nope.yaml")


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None)
@given(_values, st.sampled_from([0, 1, 2, "\t"]))
def test_json_spans_point_at_every_string(data, indent):
    text = json.dumps(data, indent=indent or None, ensure_ascii=bool(indent == 1))
    spans = fix_model_ids.json_string_spans(text)
    for path, (start, end) in spans.items():
        node = data
        for part in path:
            node = node[part]
        assert json.loads(text[start:end]) == node


def test_diff_headers_of_absolute_and_relative_paths(tmp_path, monkeypatch):
    path = tmp_path / "job.json"
    path.write_text('{"model": {"name": "mistralai-Mistral-7B-Instruct"}}\n')
    absolute = fix_model_ids.plan(path, env=ENV).diff().splitlines()[:2]
    assert absolute == [f"--- {path}", f"+++ {path}"], "not a//tmp/..."
    monkeypatch.chdir(tmp_path)
    assert fix_model_ids.plan("job.json", env=ENV).diff().splitlines()[:2] == ["--- a/job.json", "+++ b/job.json"]
