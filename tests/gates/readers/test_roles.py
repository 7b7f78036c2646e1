"""One role policy for fixed cases and training data: the standard roles plus the chat template's own."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixtures.tokenizers import template_text
from sftgate.gates.data.record_checks import check_messages
from sftgate.gates.frame.core import InputError, Stage, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.readers.cases import load_cases
from sftgate.gates.readers.roles import accepted_roles, folder_template_text, template_roles
from sftgate.gates.tokenizer import prompt_alignment
from sftgate.gates.tokenizer.rendering import PromptSpec

CHATQA = template_text("llama3_chatqa_context.jinja")
GRANITE = template_text("chatml_granite_roles.jinja")


def test_template_roles_are_found_in_role_comparisons():
    assert template_roles(CHATQA) == {"system", "context", "user", "assistant"}
    assert {"assistant_tool_call", "tool_response"} <= template_roles(GRANITE)
    assert template_roles("{% if 'critic' == message.role %}{% elif message['role'] in ['a', \"b\"] %}") == {"critic", "a", "b"}
    assert template_roles(template_text("chatml.jinja")) == set()


@given(st.text(max_size=300))
def test_template_roles_never_raise(text):
    assert isinstance(template_roles(text), frozenset)


@pytest.mark.parametrize(("template", "record_file"), [(CHATQA, "roles_chatqa_context.jsonl"),
                                                        (GRANITE, "roles_granite_tools.jsonl")])
def test_training_data_follows_the_policy(fixtures_dir, template, record_file):
    for line in (fixtures_dir / "data" / record_file).read_text().splitlines():
        record = json.loads(line)
        assert check_messages(record, accepted_roles(template)) == []
        assert {p[0] for p in check_messages(record)} == {"role_order"}  # no template: unknown roles


def test_cases_follow_the_same_policy(fixtures_dir):
    cases = fixtures_dir / "data" / "cases_chatqa_context.jsonl"
    with pytest.raises(InputError):
        load_cases(cases)
    (case,) = load_cases(cases, roles=accepted_roles(CHATQA))
    assert case.messages[0]["role"] == "context"


def test_tokenizer_gate_accepts_the_template_roles_in_cases(folders, fixtures_dir):
    cases = fixtures_dir / "data" / "cases_chatqa_context.jsonl"
    with_template = run_gate("prompt-alignment", Stage.TOKENIZER, prompt_alignment.check, tokenizer=folders.base("llama3"),
                             cases=cases, spec=PromptSpec(chat_template=CHATQA))
    assert with_template.status is Status.PASS, with_template.reason
    without = run_gate("prompt-alignment", Stage.TOKENIZER, prompt_alignment.check, tokenizer=folders.base("llama3"),
                       cases=cases)
    assert without.status is Status.ERROR and without.error_exit_code == 2


def test_dataset_gate_with_a_tokenizer_accepts_its_template_roles(cli, folders, fixtures_dir):
    folder = folders.variant("llama3", template="llama3_chatqa_context.jinja")
    data = str(fixtures_dir / "data" / "roles_chatqa_context.jsonl")
    cases = str(fixtures_dir / "data" / "cases_chatqa_context.jsonl")
    assert cli("data", data, "--format", "json").rules() == ["role_order", "role_order"]
    result = cli("data", data, "--cases", cases, "--tokenizer", str(folder), "--format", "json")
    assert "role_order" not in result.rules() and result.statuses()["split-isolation"] == "pass"
    assert folder_template_text(folder) == CHATQA
