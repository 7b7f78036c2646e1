"""Values from user input cannot forge GitHub workflow commands, links, images or terminal codes.

The Actions runner reads each line of stdout and stderr (split on ``\\n`` and ``\\r``, leading
whitespace trimmed) that starts with ``::`` as a command, and ``##[`` anywhere as an old-style
one. A file name, a config key or value, a YAML block scalar, an exception message: none may
produce such a line, in any format (table, JSON, markdown, JUnit, annotations, stderr), nor put
``\\r``, ANSI escapes, links or images into the step summary.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.frame import escape
from sftgate.gates.frame.core import Finding, GateResult, Severity, Stage, Status
from sftgate.gates.frame.report import Report, github_annotations, to_json, to_junit, to_markdown, to_table
from tests.conftest import FIXTURES, run_cli
from tests.hostile.conftest import assert_no_bug

# A line sftgate means: ``::error``/``::warning`` with escaped properties, then the message.
OWN_COMMAND = re.compile(r"^::(?:error|warning|notice)(?: (?:file=[^,:]*,)?(?:line=\d+,)?title=[^,:]*)?::")
INJECTIONS = (
    "x\n::error::FORGED", "x\r::add-mask::SECRET", "\n  ::warning file=a::FORGED", "##[error]FORGED",
    "x\r\n::stop-commands::tok", "\x1b[31mred\x1b[0m", "![i](https://evil.example/p.png)",
    "[click](https://evil.example)", "<img src=x onerror=alert(1)>", "a|b|c", "line\u2028::error::FORGED",
    "\x85::error::FORGED", "%0A::error::FORGED", "`code` **bold** $x$", "www.evil.example a@b.example",
)
texts = st.lists(st.characters(codec="utf-8") | st.sampled_from(["::", "\n", "\r", "##[", "%", " ", "\x1b[", "]("]),
                 max_size=30).map("".join)


def forged_lines(text: str) -> list[str]:
    """The lines of ``text`` the runner would take as commands sftgate did not mean."""
    lines = re.split(r"[\n\r]", text)
    return [line for line in lines if ("##[" in line) or (line.lstrip().startswith("::")
                                                          and not OWN_COMMAND.match(line.lstrip()))]


# --------------------------------------------------------------------------- the escaping itself


@given(texts)
def test_visible_is_one_printable_line(text: str) -> None:
    shown = escape.visible(text)
    assert shown.isprintable()
    assert len(shown.splitlines()) <= 1


_MD_MUST_ESCAPE = set("\\`*_[]<>!|&~$")


def _unescaped_specials(md: str) -> list[str]:
    found, i = [], 0
    while i < len(md):
        if md[i] == "\\":
            i += 2
            continue
        if md[i] in _MD_MUST_ESCAPE:
            found.append(md[i])
        i += 1
    return found


@given(texts)
def test_markdown_text_has_no_live_markup(text: str) -> None:
    md = escape.md_text(text)
    assert md.isprintable()
    assert _unescaped_specials(md) == []
    assert "://" not in md.replace("\\://", "")
    assert "www." not in md.replace("www\\.", "")


@given(st.lists(texts, min_size=1, max_size=6))
@settings(max_examples=200)
def test_guarded_stream_defuses_commands_across_writes(chunks: list[str]) -> None:
    raw = io.StringIO()
    stream = escape.GuardedStream(raw)
    for chunk in chunks:
        stream.write(chunk)
    stream.command("::error title=x::meant")
    stream.finish()
    out = raw.getvalue()
    assert forged_lines(out) == []
    assert out.count("::error title=x::meant") >= 1
    text = "".join(chunks)
    if not any(c in text for c in ":#"):  # nothing to defuse: the text is kept as it was
        assert out.startswith(text) and out.endswith("::error title=x::meant\n")
        assert len(out) - len(text) - len("::error title=x::meant\n") in (0, 1)


def test_guarded_stream_catches_a_command_split_over_writes() -> None:
    raw = io.StringIO()
    stream = escape.GuardedStream(raw)
    for piece in ("ok\n  ", ":", ":error::FORGED\n", "#", "#", "[warning]x\n"):
        stream.write(piece)
    stream.finish()
    assert forged_lines(raw.getvalue()) == []


# --------------------------------------------------------------------------- every report format


def hostile_report(value: str) -> Report:
    finding = Finding("TST001", "bad_thing", Severity.ERROR, escape.one_line(value), f"{value}:model.name",
                      suggestion=value, evidence={"value": value}, line=3)
    warning = Finding("TST002", "odd_thing", Severity.WARNING, escape.one_line(value), value)
    gates = [
        GateResult("model-id", Stage.CONFIG, Status.FAIL, 0.1, [finding, warning], metrics={value: value}),
        GateResult("eos", Stage.TOKENIZER, Status.ERROR, 0.1, reason=f"{value}\n  hint: {value}"),
        GateResult("labels", Stage.TOKENIZER, Status.SKIP, 0.0, reason=value, required=False),
    ]
    report = Report(command=f"check {value}", gates=gates)
    report.artifacts[value] = value
    return report


def _check_formats(value: str) -> None:
    report = hostile_report(value)
    table, markdown, junit = to_table(report), to_markdown(report), to_junit(report)
    annotations = github_annotations(report)
    for text in (table, markdown, junit, annotations, to_json(report)):
        assert forged_lines(text) == [], text
    # one line per structure element: no value added a line
    assert len(re.split(r"[\n\r]", table.rstrip("\n"))) == len(table.rstrip("\n").split("\n"))
    assert "\x1b" not in table and "\x1b" not in markdown and "\r" not in markdown
    assert all(line.startswith(("::error ", "::warning ")) for line in annotations.splitlines())
    assert len(annotations.splitlines()) == 3  # two findings and the gate error
    ET.fromstring(junit)  # well-formed, whatever the values
    json.loads(to_json(report))


@pytest.mark.parametrize("value", INJECTIONS)
def test_report_formats_escape_injections(value: str) -> None:
    _check_formats(value)


@given(texts)
@settings(max_examples=150)
def test_report_formats_escape_any_value(value: str) -> None:
    _check_formats(value)


def test_markdown_lets_no_image_link_or_html_through() -> None:
    md = to_markdown(hostile_report("![i](https://evil.example/p.png) <img src=x> [a](b)"))
    live = re.sub(r"\\.", "", md)  # what is left once every backslash escape is taken out
    assert "![" not in live and "<img" not in live and "](" not in live and "https:" not in live


# --------------------------------------------------------------------------- end to end through the CLI


@pytest.fixture
def actions_env(tmp_path: Path) -> dict[str, str]:
    return {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}


def _assert_clean_run(result, env: dict[str, str], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert_no_bug(result)
    assert forged_lines(result.out) == [], result.out
    assert forged_lines(result.err) == [], result.err
    for path in (Path(env["GITHUB_STEP_SUMMARY"]), tmp_path / "junit.xml"):
        if path.exists():
            text = path.read_text("utf-8")
            assert "\r" not in text and "\x1b" not in text
            assert forged_lines(text) == []
            if path.suffix == ".md":
                live = re.sub(r"\\.", "", text)
                assert "![" not in live and "](" not in live


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sftgate.yaml"
    path.write_text(text, encoding="utf-8")
    return path


CONFIGS = {
    "a value with a newline": 'sftgate: 1\nmodel:\n  id: "mistralai-x\\n::error::FORGED"\n',
    "a value with a CR": 'sftgate: 1\nmodel:\n  id: "a/b\\r::add-mask::SECRET"\n',
    "an unknown key with a newline": 'sftgate: 1\nmodel:\n  id: a/b\n"bad\\n::error::FORGED": 1\n',
    "an unknown nested key": 'sftgate: 1\nmodel:\n  id: a/b\n  "x\\r\\n::warning::FORGED": 2\n',
    "a bad YAML tag": 'sftgate: 1\nmodel:\n  id: !!int "\\n::error::FORGED"\n',
}


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_config_values_cannot_forge_commands(name: str, fmt: str, tmp_path: Path, actions_env) -> None:  # type: ignore[no-untyped-def]
    config = _config(tmp_path, CONFIGS[name])
    result = run_cli("check", str(config), "--format", fmt, "--junit-xml", str(tmp_path / "junit.xml"),
                     env=actions_env)
    _assert_clean_run(result, actions_env, tmp_path)


def test_fix_model_ids_diff_cannot_forge_commands(tmp_path: Path, actions_env) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "job.yaml"
    config.write_text("model:\n  name: mistralai-Mistral-7B-Instruct-v0.3\nnote: |\n  ::error::FORGED\n"
                      "  ##[warning]FORGED\n# a CR: \r  # ::add-mask::x\n", encoding="utf-8", newline="")
    result = run_cli("fix-model-ids", str(config), env=actions_env)
    assert result.code == 1  # a fix is pending: the diff is shown
    assert "+  name: mistralai/Mistral-7B-Instruct-v0.3" in result.out
    _assert_clean_run(result, actions_env, tmp_path)


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_file_names_in_a_release_folder_cannot_forge_commands(fmt: str, tmp_path: Path, actions_env) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "release"
    shutil.copytree(FIXTURES / "release" / "clean", folder)
    (folder / "x\n::error::FORGED").write_text("{}")
    (folder / "y\r::add-mask::SECRET.json").write_text("{}")
    result = run_cli("release", str(folder), "--format", fmt, "--junit-xml", str(tmp_path / "junit.xml"),
                     env=actions_env)
    assert result.code == 1  # files the manifest does not list: the release fails
    _assert_clean_run(result, actions_env, tmp_path)


def test_error_lines_escape_the_path(tmp_path: Path, actions_env) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "a\r::add-mask::SECRET\n::error::FORGED.yaml"
    for fmt in ("table", "json"):
        result = run_cli("check", str(missing), "--format", fmt, env=actions_env)
        assert result.code == 2
        _assert_clean_run(result, actions_env, tmp_path)
        assert any(line.startswith("::error title=sftgate::") for line in (result.out + result.err).splitlines())


def test_status_lines_on_stderr_are_one_line(tmp_path: Path, actions_env) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "x\n::error::FORGED.yaml"
    config.write_text("model:\n  name: mistralai-Mistral-7B-Instruct-v0.3\n", encoding="utf-8")
    result = run_cli("fix-model-ids", str(config), "--write", env=actions_env)
    assert result.code == 0
    _assert_clean_run(result, actions_env, tmp_path)
    assert len([line for line in result.err.splitlines() if line.startswith("fixed ")]) == 1
