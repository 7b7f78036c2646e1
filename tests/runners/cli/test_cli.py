"""The CLI frame: help, exit codes for usage errors and internal errors, no tracebacks."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from sftgate.runners.cli.main import COMMANDS


def test_every_command_in_the_table_exists():
    for name, module_name in COMMANDS:
        module = importlib.import_module(module_name)
        assert module.HELP and callable(module.add_arguments) and callable(module.run), name


def test_help_lists_commands_and_exit_codes(cli):
    result = cli("--help")
    assert result.code == 0
    for name, _ in COMMANDS:
        assert name in result.out
    assert "exit codes" in result.out


@pytest.mark.parametrize("name", [name for name, _ in COMMANDS])
def test_every_command_has_teaching_help(cli, name):
    result = cli(name, "--help")
    assert result.code == 0
    assert "usage: sftgate " + name in result.out
    assert "--format" in result.out


@pytest.mark.parametrize(
    ("argv", "code", "reason"),
    [
        ([], 2, "no command"),
        (["no-such-command"], 2, "unknown command"),
        (["check"], 2, "missing argument"),
        (["check", "x.yaml", "--format", "xml"], 2, "bad choice"),
        (["check", "/nonexistent/sftgate.yaml"], 2, "missing file"),
    ],
)
def test_usage_and_input_errors_exit_2_without_traceback(cli, argv, code, reason):
    result = cli(*argv)
    assert result.code == code, reason
    assert "Traceback" not in result.err + result.out


def test_input_error_with_json_format_still_prints_a_json_document(cli):
    result = cli("check", "/nonexistent/sftgate.yaml", "--format", "json")
    assert result.code == 2
    assert result.report["exit_code"] == 2 and result.report["passed"] is False


def test_internal_error_is_exit_3_without_traceback(cli, monkeypatch):
    from sftgate.runners.cli.commands import rules

    def boom(args, io):
        raise RuntimeError("bug")

    monkeypatch.setattr(rules, "run", boom)
    result = cli("rules")
    assert result.code == 3
    assert "Traceback" not in result.err
    assert "internal error" in result.err


def test_help_imports_no_torch():
    code = "import sys; from sftgate.runners.cli.main import main; main(['--help']); assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_rules_lists_and_explains(cli):
    listing = cli("rules", "--format", "json")
    assert listing.code == 0
    import json

    rules = json.loads(listing.out)
    codes = [r["code"] for r in rules]
    assert len(codes) == len(set(codes)), "codes are unique"
    names = [r["rule"] for r in rules]
    assert len(names) == len(set(names)), "names are unique"
    if rules:
        one = cli("rules", rules[0]["rule"])
        assert one.code == 0 and rules[0]["code"] in one.out
    assert cli("rules", "no_such_rule_xyz").code == 2


def test_check_on_an_empty_file_is_an_input_error(cli, tmp_path):
    empty = tmp_path / "job.yaml"
    empty.write_text("")
    assert cli("check", str(empty)).code == 2
