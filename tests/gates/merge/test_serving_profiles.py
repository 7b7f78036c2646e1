"""Serving profiles of gate artifacts: vLLM's LoRA limits, TGI's chat template, OpenAI-style messages."""

from __future__ import annotations

import json
import shutil

import pytest

from fixtures.tokenizers import template_text
from sftgate.gates.frame.core import Stage, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.merge import artifacts
from tests.conftest import FIXTURES

# A ChatML template that renders OpenAI tool calls (content null) and tool results.
TOOLS_CHATML = (
    "{%- for m in messages %}{%- if m['role'] == 'assistant' and m.get('tool_calls') %}"
    "{{- '<|im_start|>assistant\\n' }}{%- for c in m['tool_calls'] %}{{- c['function'] | tojson }}{%- endfor %}"
    "{{- '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def model(tmp_path, template: str | None = TOOLS_CHATML, in_config: str | None = None):
    folder = tmp_path / "model"
    shutil.copytree(FIXTURES / "artifacts" / "clean", folder)
    if template is None:
        (folder / "chat_template.jinja").unlink()
    else:
        (folder / "chat_template.jinja").write_text(template)
    if in_config is not None:
        config = json.loads((folder / "tokenizer_config.json").read_text())
        config["chat_template"] = in_config
        (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def adapter(tmp_path, **changes):
    folder = tmp_path / "adapter"
    shutil.copytree(FIXTURES / "artifacts" / "adapter_clean", folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    config.update(changes)
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def findings(folder, profile):
    result = run_gate(artifacts.GATE, Stage.MERGE, artifacts.check, model_dir=folder, profile=profile)
    assert result.status is not Status.ERROR, result.reason
    return [(f.rule, f.severity.value) for f in result.findings]


ADAPTER_CASES = [
    ({}, "vllm", [], "rank 4, plain LoRA"),
    ({"r": 64}, "vllm", [("lora_rank_over_serving_limit", "warning")], "needs --max-lora-rank 64"),
    ({"r": 8, "rank_pattern": {"q_proj": 1024}}, "vllm", [("lora_rank_over_serving_limit", "error")], "above 512"),
    ({"modules_to_save": ["lm_head"]}, "vllm", [("adapter_unsupported_by_server", "error")], "modules_to_save"),
    ({"use_dora": True}, "vllm", [("adapter_unsupported_by_server", "error")], "DoRA"),
    ({"r": 64, "modules_to_save": ["lm_head"]}, "transformers", [], "transformers loads it"),
]


@pytest.mark.parametrize(("changes", "profile", "expected", "reason"), ADAPTER_CASES, ids=[c[3] for c in ADAPTER_CASES])
def test_vllm_adapter_limits(tmp_path, changes, profile, expected, reason):
    assert findings(adapter(tmp_path, **changes), profile) == expected, reason


def test_rank_suggestion_names_the_flag(tmp_path):
    (finding,) = artifacts.check(model_dir=adapter(tmp_path, r=24), profile="vllm")
    assert finding.suggestion == "vllm serve BASE --enable-lora --max-lora-rank 32"
    assert finding.evidence == {"rank": 24, "max_lora_rank": 32}


MODEL_CASES = [
    ("tgi", TOOLS_CHATML, None, [("chat_template_not_in_tokenizer_config", "error")], "only in chat_template.jinja"),
    ("tgi", TOOLS_CHATML, TOOLS_CHATML, [], "the same template in tokenizer_config.json"),
    ("tgi", TOOLS_CHATML, "{{ messages }}", [("chat_template_not_in_tokenizer_config", "error")], "a stale copy"),
    ("tgi", None, TOOLS_CHATML, [], "only in tokenizer_config.json"),
    ("vllm", TOOLS_CHATML, None, [], "system and tool turns render"),
    ("vllm", template_text("gemma.jinja"), None,
     [("template_rejects_openai_messages", "error"), ("template_rejects_openai_messages", "warning")],
     "no system role, and roles must alternate (no tool turn)"),
    ("vllm", template_text("chatml.jinja"), None, [("template_rejects_openai_messages", "warning")],
     "content null in a tool call"),
    ("transformers", template_text("gemma.jinja"), None, [], "the transformers profile renders what it is given"),
]


@pytest.mark.parametrize(("profile", "template", "in_config", "expected", "reason"), MODEL_CASES,
                         ids=[c[4] for c in MODEL_CASES])
def test_server_template_needs(tmp_path, profile, template, in_config, expected, reason):
    assert findings(model(tmp_path, template, in_config), profile) == expected, reason


def test_profile_rules_are_in_the_catalogue():
    names = {r.name for r in artifacts.RULES}
    assert {"lora_rank_over_serving_limit", "adapter_unsupported_by_server", "chat_template_not_in_tokenizer_config",
            "template_rejects_openai_messages"} <= names
    assert artifacts.PROFILES == ("transformers", "mistral", "vllm", "tgi")


def test_release_command_takes_the_profile(cli, tmp_path):
    result = cli("release", str(adapter(tmp_path, modules_to_save=["lm_head"])), "--profile", "vllm", "--format", "json")
    assert "adapter_unsupported_by_server" in result.rules() and result.code == 1
