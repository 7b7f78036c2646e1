"""Batched greedy generation on fixed cases (shared by `sftgate eval` and the pipeline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.runner import read_jsonl, tiny_project
from sftgate.gates.frame.core import InputError
from sftgate.gates.readers.cases import load_cases
from sftgate.gates.tokenizer.rendering import PromptSpec, encode_prompt
from sftgate.runners.work import generate

SPEC = PromptSpec(system="Reply with JSON: name, age, city, job.")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    return tiny_project(tmp_path_factory.mktemp("gen"), n_cases=6)


@pytest.fixture(scope="module")
def loaded(project):
    return generate.load_for_generation(project.model)


def test_records_in_case_order_with_stop_reasons(project, loaded) -> None:
    model, tok = loaded
    cases = load_cases(project.cases)
    stats: dict = {}
    records = generate.generate_cases(model, tok, cases, SPEC, max_new_tokens=5, batch_size=4, stats=stats)
    assert [r.id for r in records] == [c.id for c in cases]
    assert all(r.stop_reason in ("eos", "length") for r in records)
    assert [r.expected for r in records] == [c.expected for c in cases]
    assert stats["cases"] == 6 and stats["generated_tokens"] > 0


def test_batching_does_not_change_greedy_outputs(project, loaded) -> None:
    """Left padding with the attention mask: a batch of 6 decodes exactly as one case at a time."""
    model, tok = loaded
    cases = load_cases(project.cases)
    one = generate.generate_cases(model, tok, cases, SPEC, max_new_tokens=6, batch_size=1)
    many = generate.generate_cases(model, tok, cases, SPEC, max_new_tokens=6, batch_size=6)
    assert [r.output for r in one] == [r.output for r in many]


def test_stop_token_ends_generation(project, loaded) -> None:
    """Every id a stop id: each case stops at once with 'eos' and an empty output (the stop is cut)."""
    model, tok = loaded
    cases = load_cases(project.cases)
    records = generate.generate_cases(model, tok, cases, SPEC, max_new_tokens=4, stop_ids=range(len(tok)))
    assert {r.stop_reason for r in records} == {"eos"}
    assert {r.output for r in records} == {""}
    never = generate.generate_cases(model, tok, cases, SPEC, max_new_tokens=3, stop_ids=[])
    assert {r.stop_reason for r in never} == {"length"}


def test_stop_ids_include_template_end_of_turn(loaded) -> None:
    model, tok = loaded
    ids = generate.stop_ids_for(model, tok)
    assert tok.convert_tokens_to_ids("<|im_end|>") in ids and tok.eos_token_id in ids


def test_prompts_tokenized_as_in_training(project, loaded) -> None:
    """The prompt generation starts from is encode_prompt's: the same ids the labels were built on."""
    _, tok = loaded
    case = load_cases(project.cases)[0]
    ids = encode_prompt(tok, case.as_example(), SPEC)
    assert tok.decode(ids).endswith("<|im_start|>assistant\n")


def test_outputs_file_round_trips_through_json_check(project, loaded, tmp_path: Path) -> None:
    from sftgate.gates.adapter import strict_json

    model, tok = loaded
    records = generate.generate_cases(model, tok, load_cases(project.cases), SPEC, max_new_tokens=3)
    out = generate.write_outputs(tmp_path / "outputs.jsonl", records)
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [r.id for r in records]
    assert all({"id", "output", "stop_reason", "expected"} <= set(r) for r in rows)
    metrics: dict = {}
    list(strict_json.check(outputs=out, schema=project.schema, min_pass_rate=0.0, metrics=metrics))
    assert metrics["cases"] == len(records)


@pytest.mark.parametrize(("kind", "reason"), [("model", "no such model folder"), ("adapter", "not an adapter folder")])
def test_bad_folders(project, tmp_path: Path, kind: str, reason: str) -> None:
    with pytest.raises(InputError):
        if kind == "model":
            generate.load_for_generation(tmp_path / "missing")
        else:
            generate.load_for_generation(project.model, adapter=tmp_path)
