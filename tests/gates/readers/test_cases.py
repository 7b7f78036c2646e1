"""Fixed cases: loading, validation errors at FILE:LINE, and the example handed to rendering."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers.cases import MISSING, FixedCase, load_cases


def test_fixture_cases_load(fixtures_dir):
    cases = load_cases(fixtures_dir / "strict_json" / "cases.jsonl")
    assert [c.id for c in cases] == ["c1", "c2", "c3"]
    assert [c.line for c in cases] == [1, 2, 4]  # a blank line is skipped, numbering is kept
    assert cases[0].expected == {"name": "Ada", "age": 36, "status": "active"}
    assert cases[1].expected is MISSING and not cases[1].has_expected
    assert cases[2].expected is None and cases[2].has_expected  # null is a real expected value
    assert cases[0].as_example() == {"prompt": "Extract the person: Ada, 36, active."}
    assert cases[1].as_example()["messages"][1] == {"role": "user", "content": "Extract the person: Bob, 0, inactive."}


def test_as_example_is_a_copy():
    case = FixedCase("a", None, [{"role": "user", "content": "hi"}], line=1)
    case.as_example()["messages"][0]["content"] = "changed"
    assert case.messages[0]["content"] == "hi"


@pytest.mark.parametrize(
    ("lines", "bad_line", "reason"),
    [
        (['{"id": "a", "prompt": "x"}', "not json"], 2, "a line that is not JSON"),
        (['["a", "x"]'], 1, "a line that is not an object"),
        (['{"prompt": "x"}'], 1, "no id"),
        (['{"id": "", "prompt": "x"}'], 1, "an empty id"),
        (['{"id": true, "prompt": "x"}'], 1, "a boolean id"),
        (['{"id": "a"}'], 1, "neither prompt nor messages"),
        (['{"id": "a", "prompt": "x", "messages": []}'], 1, "both prompt and messages"),
        (['{"id": "a", "prompt": ""}'], 1, "an empty prompt"),
        (['{"id": "a", "prompt": 3}'], 1, "a prompt that is not a string"),
        (['{"id": "a", "messages": []}'], 1, "no messages"),
        (['{"id": "a", "messages": ["hi"]}'], 1, "a message that is not an object"),
        (['{"id": "a", "messages": [{"role": "human", "content": "hi"}]}'], 1, "an unknown role"),
        (['{"id": "a", "messages": [{"role": "user"}]}'], 1, "a message without content"),
        (['{"id": "a", "prompt": "x"}', "", '{"id": "a", "prompt": "y"}'], 3, "a duplicate id"),
    ],
)
def test_malformed_cases_name_file_and_line(tmp_path, lines, bad_line, reason):
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        load_cases(path)
    assert err.value.exit_code == 2
    assert f"{path}:{bad_line}:" in err.value.message, reason
    assert err.value.hint


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "a missing file"), (b"\n\n", "an empty file"), (b'{"id": "a", "prompt": "\xff"}\n', "not UTF-8")],
)
def test_unreadable_cases_are_input_errors(tmp_path, content, reason):
    path = tmp_path / "cases.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError):
        load_cases(path)


ids = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10).filter(str.strip)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=8,
)


@settings(deadline=None)
@given(st.lists(st.tuples(ids, st.text(min_size=1).filter(str.strip), json_values), min_size=1, max_size=5,
                unique_by=lambda t: t[0]))
def test_round_trip(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("cases") / "cases.jsonl"
    path.write_text("\n".join(json.dumps({"id": i, "prompt": p, "expected": e}) for i, p, e in rows) + "\n")
    cases = load_cases(path)
    assert [(c.id, c.prompt, c.expected) for c in cases] == rows
