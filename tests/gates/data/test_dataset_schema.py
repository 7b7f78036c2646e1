"""Gate dataset-schema: one fixture per rule, clean files, stats, the shipped JSON Schemas."""

from __future__ import annotations

import json
import statistics
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sftgate.gates.adapter.json_parse import parse_strict
from sftgate.gates.data import dataset_schema, record_checks
from sftgate.gates.data.dataset_schema import RULES, check
from sftgate.gates.data.dataset_stats import percentiles
from sftgate.gates.data.record_checks import fast_strict_parse
from sftgate.gates.frame.core import ConfigError, InputError, Severity, Stage
from sftgate.gates.frame.execute import run_gate

DATA = Path(__file__).resolve().parents[3] / "fixtures" / "data"
SCHEMA = DATA / "output_schema.json"


def run(train: Path | str, **kwargs: Any) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    metrics: dict[str, Any] = {}
    found = [(f.rule, f.location.rsplit(":", 1)[1]) for f in check(train=train, metrics=metrics, **kwargs)]
    return found, metrics


# --------------------------------------------------------------------------- one fixture per rule

RULE_CASES = [
    ("invalid_json_line.jsonl", {}, "invalid_json_line", "2", "a line cut off mid-object"),
    ("invalid_json_line_utf8.jsonl", {}, "invalid_json_line", "2", "latin-1 bytes: invalid UTF-8 is reported, not a crash"),
    ("not_an_object.jsonl", {}, "not_an_object", "2", "a JSON array where an object belongs"),
    ("unknown_format.jsonl", {}, "unknown_format", "2", "an alpaca record"),
    ("missing_field.jsonl", {}, "missing_field", "2", "no completion"),
    ("empty_field.jsonl", {}, "empty_field", "2", "a whitespace completion"),
    ("wrong_type.jsonl", {}, "wrong_type", "2", "a number as completion"),
    ("role_order.jsonl", {}, "role_order", "2", "two assistant turns in a row"),
    ("role_order_unknown_role.jsonl", {}, "role_order", "2", "a ShareGPT role name (human)"),
    ("last_turn_not_assistant.jsonl", {}, "last_turn_not_assistant", "2", "ends with a user turn"),
    ("completion_schema.jsonl", {"output_schema": SCHEMA}, "completion_schema", "2", "a fenced JSON completion"),
    ("duplicate_example.jsonl", {}, "duplicate_example", "3", "line 3 repeats line 1"),
    ("empty_dataset.jsonl", {}, "empty_dataset", "1", "an empty file"),
    ("mixed_formats.jsonl", {}, "mixed_formats", "3", "one chat record among prompt/completion records"),
    ("blank_line.jsonl", {}, "blank_line", "2", "a blank line is tolerated, with a warning"),
    ("unseen_enum_value.jsonl", {"output_schema": SCHEMA}, "unseen_enum_value", "label", "no neutral example"),
]


@pytest.mark.parametrize(("name", "kwargs", "rule", "where", "reason"), RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_fixture_triggers_exactly_its_rule(name: str, kwargs: dict[str, Any], rule: str, where: str,
                                           reason: str) -> None:
    found, _ = run(DATA / name, **kwargs)
    assert found == [(rule, where)], reason


def test_every_rule_has_a_fixture_or_a_test() -> None:
    tested = {c[2] for c in RULE_CASES} | {"too_long", "template_error"}  # the two need a tokenizer: below
    assert tested == {r.name for r in RULES}


@pytest.mark.parametrize(
    ("name", "kwargs", "reason"),
    [
        ("clean_prompt_completion.jsonl", {"output_schema": SCHEMA}, "JSON completions valid against the schema"),
        ("clean_messages.jsonl", {}, "system, multi-turn and a tool call"),
        ("clean_eval.jsonl", {}, "the eval split"),
        ("bom_crlf.jsonl", {}, "a BOM and CRLF endings are tolerated silently"),
    ],
)
def test_clean_files_raise_nothing(name: str, kwargs: dict[str, Any], reason: str) -> None:
    found, metrics = run(DATA / name, **kwargs)
    assert found == [], reason
    assert metrics["valid"] == metrics["records"] > 0


def test_rule_catalogue() -> None:
    codes = [r.code for r in RULES]
    assert len(set(codes)) == len(codes) and all(c.startswith("DATA") and len(c) == 7 for c in codes)
    assert {r.name for r in RULES if r.severity is Severity.WARNING} == {
        "duplicate_example", "blank_line", "unseen_enum_value"}
    for r in RULES:
        assert r.summary and r.why and r.fix, r.name


def test_gate_status_and_exit_codes(tmp_path: Path) -> None:
    fail = run_gate("dataset-schema", Stage.DATA, check, train=DATA / "wrong_type.jsonl")
    assert fail.status.value == "fail"
    warn_only = run_gate("dataset-schema", fail.stage, check, train=DATA / "duplicate_example.jsonl")
    assert warn_only.status.value == "pass", "a duplicate is a warning"
    missing = run_gate("dataset-schema", fail.stage, check, train=tmp_path / "nope.jsonl")
    assert (missing.status.value, missing.error_exit_code) == ("error", 2)


def test_bad_output_schema_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "s.json"
    bad.write_text('{"type": "objekt"}')
    with pytest.raises(InputError):
        list(check(train=DATA / "clean_prompt_completion.jsonl", output_schema=bad))


# --------------------------------------------------------------------------- details of the findings


def test_findings_carry_location_line_and_evidence() -> None:
    (f,) = list(check(train=DATA / "completion_schema.jsonl", output_schema=SCHEMA))
    assert f.code == "DATA009" and f.line == 2 and f.location.endswith("completion_schema.jsonl:2")
    assert f.evidence["json_rule"] == "code_fence"
    (d,) = list(check(train=DATA / "duplicate_example.jsonl"))
    assert d.evidence["first"].endswith("duplicate_example.jsonl:1")
    (u,) = list(check(train=DATA / "unknown_format.jsonl"))
    assert u.suggestion and u.suggestion.startswith("jq ")
    (r,) = list(check(train=DATA / "role_order_unknown_role.jsonl"))
    assert r.suggestion == "user", "human -> user"


def test_every_problem_of_a_record_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"prompt": "", "completion": 5}) + "\n" + json.dumps(
        {"messages": [{"role": "user"}, {"role": "user", "content": ""}, {"role": "bot", "content": "x"}]}) + "\n")
    found, metrics = run(path)
    assert found == [("empty_field", "1"), ("wrong_type", "1"), ("missing_field", "2"), ("empty_field", "2"),
                     ("role_order", "2"), ("role_order", "2"), ("mixed_formats", "2")], "a 1:1 tie: the first format"
    assert metrics["train"]["rules"]["role_order"] == 2


def test_max_per_rule_lists_some_and_counts_all(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"p{i}", "completion": ""}) + "\n" for i in range(30)))
    found, metrics = run(path, max_per_rule=5)
    assert found[:5] == [("empty_field", str(i)) for i in range(1, 6)]
    assert found[5] == ("empty_field", "6") and len(found) == 6, "one summary finding, at the first unlisted line"
    assert metrics["train"]["rules"]["empty_field"] == 30
    findings = list(check(train=path, max_per_rule=5))
    assert findings[-1].evidence["total"] == 30 and findings[-1].evidence["next_lines"][0] == 6
    assert len(run(path, max_per_rule=0)[0]) == 30, "0 lists all"


def test_format_is_decided_from_all_records_not_the_first(tmp_path: Path) -> None:
    chat = json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})
    path = tmp_path / "d.jsonl"
    path.write_text(chat + "\n" + "".join(json.dumps({"prompt": f"p{i}", "completion": "c"}) + "\n" for i in range(3)))
    found, metrics = run(path)
    assert found == [("mixed_formats", "1")], "the first record is the odd one out"
    assert metrics["train"]["format"] == "prompt_completion"
    found, _ = run(path, format="messages")
    assert found == [("mixed_formats", str(n)) for n in (2, 3, 4)], "data.format decides when set"
    with pytest.raises(InputError):
        run(path, format="alpaca")


# --------------------------------------------------------------------------- stats


def test_stats_in_metrics() -> None:
    _, metrics = run(DATA / "clean_prompt_completion.jsonl", eval=DATA / "clean_eval.jsonl", output_schema=SCHEMA)
    train = metrics["train"]
    assert (metrics["records"], metrics["valid"], metrics["duplicates"]) == (11, 11, 0)
    assert train["formats"] == {"prompt_completion": 8}
    assert set(train["chars"]["prompt"]) == {"p5", "p50", "p95", "max", "mean"}
    assert train["completion_values"]["label"] == {"positive": 3, "negative": 3, "neutral": 2}
    assert train["completion_schema_pass_rate"] == 1.0
    assert metrics["eval"]["records"] == 3


def test_value_stats_drop_high_cardinality_keys(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    rows = [{"prompt": f"p{i}", "completion": json.dumps({"id": i, "ok": i % 2 == 0})} for i in range(80)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, metrics = run(path)
    assert metrics["train"]["completion_values"] == {"ok": {"true": 40, "false": 40}}
    assert metrics["train"]["completion_keys_not_enum"] == ["id"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**6), min_size=2, max_size=300))
def test_percentiles_match_the_statistics_module(values: list[int]) -> None:
    got = percentiles(values)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    for key, cut in (("p5", cuts[4]), ("p50", cuts[49]), ("p95", cuts[94])):
        assert got[key] == pytest.approx(cut, abs=0.05 + 1e-6), key  # reported to one decimal
    assert got["max"] == max(values)


def test_percentiles_of_nothing_and_one() -> None:
    assert percentiles([]) == {}
    assert percentiles([7]) == {"p5": 7.0, "p50": 7.0, "p95": 7.0, "max": 7, "mean": 7.0}


# --------------------------------------------------------------------------- the JSON Schemas agree with the code

_text = st.one_of(st.text(max_size=6), st.sampled_from(["", " ", "\t\n", "\x1c", "\u2003", "ok"]))
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), _text)
_role = st.one_of(st.sampled_from(["system", "user", "assistant", "tool", "human", "User"]), st.integers(0, 1))
_message = st.one_of(
    st.fixed_dictionaries({}, optional={"role": _role, "content": _scalar,
                                        "tool_calls": st.one_of(st.just([]), st.just([{"id": "x"}]), _scalar)}),
    _scalar,
)
_record = st.one_of(
    st.fixed_dictionaries({}, optional={"prompt": st.one_of(_scalar, st.lists(_scalar, max_size=2)),
                                        "completion": _scalar, "id": st.integers()}),
    st.fixed_dictionaries({"messages": st.one_of(st.lists(_message, max_size=4), _scalar)},
                          optional={"meta": _scalar, "prompt": _scalar}),
)
_STRUCTURAL = {"missing_field", "empty_field", "wrong_type", "unknown_format"}


def _validator(fmt: str) -> Any:
    from jsonschema import Draft202012Validator

    name = {"prompt_completion": "dataset-prompt-completion", "messages": "dataset-messages"}[fmt]
    schema = json.loads(resources.files("gates").joinpath(f"schemas/{name}.schema.json").read_text("utf-8"))
    return Draft202012Validator(schema)


@settings(max_examples=400, deadline=None)
@given(_record)
def test_shipped_json_schemas_agree_with_the_checks(record: dict[str, Any]) -> None:
    fmt = record_checks.record_format(record)
    if fmt == "prompt_completion":
        rules = {p[0] for p in record_checks.check_prompt_completion(record)}
    elif fmt == "messages":
        problems = record_checks.check_messages(record)
        rules = {p[0] for p in problems}
        msgs = record["messages"]
        if isinstance(msgs, list) and any(
            isinstance(m, dict) and isinstance(m.get("role"), str) and m["role"] not in record_checks.ROLES
            for m in msgs
        ):
            rules.add("wrong_type")  # an unknown role: the schema's enum; the gate calls it role_order
    else:
        rules = {"unknown_format"}
    code_valid = not (rules & _STRUCTURAL)
    schema_valid = any(_validator(f).is_valid(record) for f in ("prompt_completion", "messages"))
    assert code_valid == schema_valid, (record, rules)


# --------------------------------------------------------------------------- strict-JSON fast path


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                 max_leaves=8).map(json.dumps),
    st.sampled_from(['{"a": 1, "a": 2}', '{"a": {"b": 1, "b": 1}}', '{"a": "x:y"}', '{"a": 1} ', '```{}```',
                     '{"a": NaN}', '[1, 2,]', '{"a": 1e400}', '{"a":1}{"b":2}', '{"k": "\\ud800"}']),
    st.text(alphabet='{}[]":,a1 \\', max_size=12),
))
def test_fast_strict_parse_never_disagrees_with_parse_strict(text: str) -> None:
    fast = fast_strict_parse(text)
    value, problem = parse_strict(text)
    if fast is record_checks._UNSURE:
        return
    assert problem is None, text
    assert fast == value or (fast != fast and value != value), text


def test_duplicate_key_is_not_hidden_by_the_fast_path() -> None:
    assert fast_strict_parse('{"a": 1, "a": 2}') is record_checks._UNSURE
    assert fast_strict_parse('{"a": "12:30"}') is record_checks._UNSURE, "a ':' in a string: ask parse_strict"
    assert fast_strict_parse('{"a": {"b": [1, {"c": 2}]}}') == {"a": {"b": [1, {"c": 2}]}}


# --------------------------------------------------------------------------- worker processes


@pytest.mark.parametrize("name", ["mixed_formats.jsonl", "duplicate_example.jsonl", "blank_line.jsonl"])
def test_worker_processes_give_the_same_report(tmp_path: Path, name: str) -> None:
    big = tmp_path / name
    big.write_bytes((DATA / name).read_bytes() * 40)
    one = [(f.rule, f.location, f.evidence) for f in check(train=big, workers=1, max_per_rule=20)]
    m1: dict[str, Any] = {}
    m2: dict[str, Any] = {}
    list(check(train=big, workers=1, metrics=m1))
    two = [(f.rule, f.location, f.evidence) for f in check(train=big, workers=2, max_per_rule=20)]
    list(check(train=big, workers=2, metrics=m2))
    assert two == one
    m2["train"].pop("workers", None)
    assert m2 == m1


# --------------------------------------------------------------------------- with a tokenizer


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from sftgate.runners.demo.tiny_tokenizer import build_tiny_tokenizer

    return build_tiny_tokenizer(tmp_path_factory.mktemp("tok") / "tiny")


def test_too_long(tiny_tokenizer: Path) -> None:
    found, metrics = run(DATA / "too_long.jsonl", tokenizer=tiny_tokenizer, max_seq_len=100)
    assert found == [("too_long", "2")]
    assert metrics["too_long"] == 1 and metrics["too_long_pct"] == pytest.approx(33.333, abs=0.01)
    assert metrics["train"]["tokens"]["max"] > 100 >= metrics["train"]["tokens"]["p5"]
    (f,) = list(check(train=DATA / "too_long.jsonl", tokenizer=tiny_tokenizer, max_seq_len=100))
    assert f.evidence["tokens"] > f.evidence["max_seq_len"] == 100


def test_token_stats_without_a_limit(tiny_tokenizer: Path) -> None:
    found, metrics = run(DATA / "clean_prompt_completion.jsonl", tokenizer=tiny_tokenizer)
    assert found == [] and "too_long" not in metrics and metrics["train"]["tokens"]["max"] > 0


def test_template_error(tiny_tokenizer: Path) -> None:
    from sftgate.gates.tokenizer.rendering import PromptSpec

    spec = PromptSpec(chat_template=(DATA / "no_system.jinja").read_text())
    found, _ = run(DATA / "template_error.jsonl", tokenizer=tiny_tokenizer, prompt=spec)
    assert found == [("template_error", "2")]


def test_tokens_in_worker_processes(tiny_tokenizer: Path, tmp_path: Path) -> None:
    big = tmp_path / "long.jsonl"
    big.write_bytes((DATA / "too_long.jsonl").read_bytes() * 10)
    one = run(big, tokenizer=tiny_tokenizer, max_seq_len=100, workers=1)
    two = run(big, tokenizer=tiny_tokenizer, max_seq_len=100, workers=2)
    assert two[0] == one[0] and [w for w in one[0] if w[0] == "too_long"] == [("too_long", str(n)) for n in
                                                                            range(2, 30, 3)]
    assert two[1]["train"]["tokens"] == one[1]["train"]["tokens"]


# --------------------------------------------------------------------------- config


def _config(tmp_path: Path, data: dict[str, Any], model: dict[str, Any] | None = None) -> Any:
    from sftgate.gates.readers.config import load

    path = tmp_path / "sftgate.yaml"
    path.write_text(json.dumps({"model": model or {"id": "org/model"}, "data": data}))
    return load(path)


def test_from_config(tmp_path: Path) -> None:
    for name in ("clean_prompt_completion.jsonl", "output_schema.json"):
        (tmp_path / name).write_bytes((DATA / name).read_bytes())
    kwargs = dataset_schema.from_config(_config(tmp_path, {"train": "clean_prompt_completion.jsonl",
                                                           "output_schema": "output_schema.json",
                                                           "format": "prompt_completion"}))
    assert kwargs is not None and kwargs["train"] == tmp_path / "clean_prompt_completion.jsonl"
    assert kwargs["output_schema"] == tmp_path / "output_schema.json" and kwargs["format"] == "prompt_completion"
    assert "tokenizer" not in kwargs, "org/model is not available offline: no token stats"
    assert list(check(**kwargs)) == []
    assert dataset_schema.from_config(_config(tmp_path, {})) is None
    with pytest.raises(ConfigError):
        dataset_schema.from_config(_config(tmp_path, {"train": "missing.jsonl"}))


def test_from_config_with_a_local_tokenizer(tmp_path: Path, tiny_tokenizer: Path) -> None:
    (tmp_path / "t.jsonl").write_bytes((DATA / "too_long.jsonl").read_bytes())
    cfg = _config(tmp_path, {"train": "t.jsonl"}, {"id": "org/model", "tokenizer": str(tiny_tokenizer)})
    cfg.data["train"] = {"max_seq_len": 100}
    kwargs = dataset_schema.from_config(cfg)
    assert kwargs is not None and kwargs["tokenizer"] == tiny_tokenizer and kwargs["max_seq_len"] == 100
    assert [f.rule for f in check(**kwargs)] == ["too_long"]


@pytest.mark.parametrize("bad", [b"\x00\x01", b"{" * 5000, b'{"messages": [' + b"[" * 3000 + b"]}"])
def test_hostile_lines_are_findings(tmp_path: Path, bad: bytes) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(bad + b"\n")
    found, _ = run(path)
    assert found and found[0][0] == "invalid_json_line"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(_record, max_size=8))
def test_random_records_never_crash(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    assume(records)
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    findings = list(check(train=path, output_schema=SCHEMA))
    assert all(f.file_line is not None or f.rule == "unseen_enum_value" for f in findings)
