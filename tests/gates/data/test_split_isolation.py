"""Gate split-isolation: one eval fixture per leak rule against the clean train file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.data import split_isolation
from sftgate.gates.data.leak_hashing import batch_hashes, record_words
from sftgate.gates.data.split_isolation import RULES, check
from sftgate.gates.data.text_normalize import fold_bytes, normalize, words
from sftgate.gates.frame.core import ConfigError, InputError

DATA = Path(__file__).resolve().parents[3] / "fixtures" / "data"
TRAIN = DATA / "clean_prompt_completion.jsonl"


def run(**kwargs: Any) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    kwargs.setdefault("train", TRAIN)
    metrics: dict[str, Any] = {}
    found = [(f.rule, f.location.rsplit(":", 1)[1]) for f in check(metrics=metrics, **kwargs)]
    return found, metrics


RULE_CASES = [
    ({"eval": DATA / "eval_leak_exact.jsonl"}, "eval_leak_exact", "2", "a train record copied into eval"),
    ({"eval": DATA / "eval_leak_normalized.jsonl"}, "eval_leak_normalized", "2", "case, spacing, punctuation differ"),
    ({"eval": DATA / "eval_leak_prompt.jsonl"}, "eval_leak_prompt", "2", "same prompt, another label"),
    ({"eval": DATA / "eval_leak_ngram.jsonl"}, "eval_leak_ngram", "2", "a shared 13-word span of a review"),
    ({"eval": DATA / "group_leak.jsonl", "group_key": "source"}, "group_leak", "2", "source doc-05 in both"),
    ({"cases": DATA / "cases_leak.jsonl"}, "cases_leak", "2", "a fixed case's chat prompt is a train prompt"),
]


@pytest.mark.parametrize(("kwargs", "rule", "line", "reason"), RULE_CASES, ids=[c[1] for c in RULE_CASES])
def test_fixture_triggers_exactly_its_rule(kwargs: dict[str, Any], rule: str, line: str, reason: str) -> None:
    found, metrics = run(**kwargs)
    assert found == [(rule, line)], reason
    assert metrics["leaks"] == {rule: 1}


def test_every_rule_has_a_fixture() -> None:
    assert {c[1] for c in RULE_CASES} == {r.name for r in RULES}
    codes = [r.code for r in RULES]
    assert codes == [f"LEAK00{i}" for i in range(1, 7)]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"eval": DATA / "clean_eval.jsonl", "group_key": "source"}, "no shared record, prompt, n-gram or group"),
        ({"cases": DATA / "clean_cases.jsonl"}, "fresh fixed cases"),
        ({"eval": DATA / "clean_eval.jsonl", "cases": DATA / "clean_cases.jsonl"}, "both"),
    ],
)
def test_clean_splits_raise_nothing(kwargs: dict[str, Any], reason: str) -> None:
    found, metrics = run(**kwargs)
    assert found == [], reason
    assert metrics["train_records"] == 8 and metrics["leaked_eval_records"] == 0


def test_evidence_names_both_places() -> None:
    (f,) = list(check(train=TRAIN, eval=DATA / "eval_leak_exact.jsonl"))
    assert f.evidence["train"].endswith("clean_prompt_completion.jsonl:3")
    assert f.evidence["eval"].endswith("eval_leak_exact.jsonl:2") and f.line == 2
    (g,) = list(check(train=TRAIN, eval=DATA / "eval_leak_ngram.jsonl"))
    assert g.evidence["ngram"] == "the hiking boots were comfortable from the very first mile on the mountain"
    assert g.evidence["train"].endswith(":4") and g.evidence["n"] == 13
    (c,) = list(check(train=TRAIN, cases=DATA / "cases_leak.jsonl"))
    assert c.evidence["case"] == "c2" and c.evidence["train"].endswith(":8")


def test_exact_copy_is_not_reported_as_normalized(tmp_path: Path) -> None:
    row = {"prompt": "Hello, World", "completion": "x"}
    (tmp_path / "t.jsonl").write_text(json.dumps(row) + "\n" + json.dumps({**row, "prompt": "hello world"}) + "\n")
    (tmp_path / "e.jsonl").write_text(json.dumps(row) + "\n")
    found, _ = run(train=tmp_path / "t.jsonl", eval=tmp_path / "e.jsonl")
    assert found == [("eval_leak_exact", "1")], "the strongest leak per eval record, once"
    (f,) = list(check(train=tmp_path / "t.jsonl", eval=tmp_path / "e.jsonl"))
    assert f.evidence["train_matches"] == 2


def test_chat_and_prompt_completion_compare(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text(json.dumps({"prompt": "What is 2+2?", "completion": "4"}) + "\n")
    chat = {"messages": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]}
    (tmp_path / "e.jsonl").write_text(json.dumps(chat) + "\n")
    assert run(train=tmp_path / "t.jsonl", eval=tmp_path / "e.jsonl")[0] == [("eval_leak_exact", "1")]


@pytest.mark.parametrize(("n", "expected"), [(13, []), (6, [("eval_leak_ngram", "1")])])
def test_ngram_length_is_configurable(tmp_path: Path, n: int, expected: list[tuple[str, str]]) -> None:
    (tmp_path / "t.jsonl").write_text(json.dumps({"prompt": "alpha beta gamma delta epsilon zeta eta", "completion": "a"})
                                      + "\n")
    (tmp_path / "e.jsonl").write_text(json.dumps({"prompt": "x alpha beta gamma delta epsilon zeta y", "completion": "b"})
                                      + "\n")
    assert run(train=tmp_path / "t.jsonl", eval=tmp_path / "e.jsonl", ngram=n)[0] == expected
    with pytest.raises(InputError):
        run(train=tmp_path / "t.jsonl", eval=tmp_path / "e.jsonl", ngram=2)


def test_template_text_shared_by_many_records_is_not_a_leak(tmp_path: Path) -> None:
    boiler = "Read the following customer message carefully and answer with one JSON object only please:"
    train = [{"prompt": f"{boiler} message number {i} about order {i * 7}", "completion": "{}"} for i in range(30)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    evals = [{"prompt": f"{boiler} a new message", "completion": "{}"},
             {"prompt": f"{boiler} message number 3 is here again", "completion": "{}"}]  # shares 3 more words
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(r) + "\n" for r in evals))
    found, metrics = run(train=tmp_path / "t.jsonl", eval=tmp_path / "e.jsonl")
    assert found == [] and metrics["common_ngrams_ignored"] > 0, "the instruction plus a word or two is no leak"
    found, _ = run(train=tmp_path / "t.jsonl", eval=tmp_path / "e.jsonl", ngram_common=100)
    assert found == [("eval_leak_ngram", "1"), ("eval_leak_ngram", "2")], "with the threshold raised, it counts"


def test_worker_processes_give_the_same_report(tmp_path: Path) -> None:
    train = tmp_path / "t.jsonl"
    filler = "".join(json.dumps({"prompt": f"filler question {i}", "completion": f"answer {i}"}) + "\n"
                     for i in range(300))
    train.write_text(filler + TRAIN.read_text() + filler.replace("filler", "padding") + TRAIN.read_text())
    kwargs = {"train": train, "eval": DATA / "eval_leak_ngram.jsonl", "cases": DATA / "cases_leak.jsonl"}
    one = [(f.rule, f.location, f.evidence) for f in check(workers=1, **kwargs)]
    two = [(f.rule, f.location, f.evidence) for f in check(workers=2, **kwargs)]
    assert two == one and [r for r, _, _ in one] == ["eval_leak_ngram", "cases_leak"]
    assert one[0][2]["train"].endswith(":304") and one[1][2]["train_matches"] == 2


def test_needs_something_to_compare(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        run()
    with pytest.raises(InputError):
        run(eval=tmp_path / "missing.jsonl")


def test_broken_records_are_skipped_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_bytes(TRAIN.read_bytes() + b"{bad\n[1]\n\xff\n")
    found, metrics = run(train=tmp_path / "t.jsonl", eval=DATA / "eval_leak_exact.jsonl")
    assert found == [("eval_leak_exact", "2")] and metrics["records_without_text"]["train"] == 3


def test_from_config(tmp_path: Path) -> None:
    from sftgate.gates.readers.config import load

    for name in ("clean_prompt_completion.jsonl", "group_leak.jsonl"):
        (tmp_path / name).write_bytes((DATA / name).read_bytes())
    path = tmp_path / "sftgate.yaml"
    path.write_text(json.dumps({"model": {"id": "org/m"}, "data": {
        "train": "clean_prompt_completion.jsonl", "eval": "group_leak.jsonl", "group_key": "source", "ngram": 8}}))
    kwargs = split_isolation.from_config(load(path))
    assert kwargs is not None and kwargs["ngram"] == 8 and kwargs["group_key"] == "source"
    assert [f.rule for f in check(**kwargs)] == ["group_leak"]
    path.write_text(json.dumps({"model": {"id": "org/m"}, "data": {"train": "clean_prompt_completion.jsonl"}}))
    assert split_isolation.from_config(load(path)) is None, "nothing to compare with: not enabled"
    path.write_text(json.dumps({"model": {"id": "org/m"}, "data": {"train": "clean_prompt_completion.jsonl",
                                                                    "cases": "nope.jsonl"}}))
    with pytest.raises(ConfigError):
        split_isolation.from_config(load(path))


# --------------------------------------------------------------------------- normalisation and hashing


@pytest.mark.parametrize(
    ("a", "b", "equal", "reason"),
    [
        ("Hello,  World!", "hello world", True, "case, punctuation, spaces"),
        ("ﬁne-tuning", "fine tuning", True, "NFKC ligature, dash"),
        ("Ｆｕｌｌ　ｗｉｄｔｈ", "full width", True, "full-width forms and ideographic space"),
        ("STRASSE", "straße", True, "casefold"),
        ("2+2", "2 2", False, "symbols are kept"),
        ("a b", "ab", False, "word boundaries matter"),
    ],
)
def test_normalize(a: str, b: str, equal: bool, reason: str) -> None:
    assert (normalize(a) == normalize(b)) is equal, reason


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_fold_bytes_splits_into_the_same_words(text: str) -> None:
    assert [w for w in fold_bytes(text).decode("utf-8").split(" ") if w] == words(text)
    assert normalize(normalize(text)) == normalize(text)
    assert "\n" not in fold_bytes(text).decode("utf-8")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=30), st.text(max_size=30)), min_size=1, max_size=6), st.integers(2, 5))
def test_batch_hashes_match_single_record_hashes(pairs: list[tuple[str, str]], n: int) -> None:
    items = [((("user", p),), c) for p, c in pairs]
    batch = batch_hashes(items, n)
    for i, item in enumerate(items):
        one = batch_hashes([item], n)
        assert batch.nprompt[i] == one.nprompt[0] and batch.nfull[i] == one.nfull[0]
        assert batch.ngrams[batch.ngram_rec == i].tolist() == one.ngrams.tolist()
        assert len(one.ngrams) == max(0, len(record_words(*item)) - n + 1)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=30), st.text(max_size=30), st.text(max_size=30))
def test_normalized_keys_depend_only_on_normalized_text(p: str, q: str, c: str) -> None:
    a = batch_hashes([((("user", p),), c), ((("user", q),), c)], 3)
    same = words(p) == words(q)
    assert bool(a.nprompt[0] == a.nprompt[1]) is same
    assert bool(a.nfull[0] == a.nfull[1]) is same
    assert bool(a.exact[0] == a.exact[1]) is (p == q)
