"""The README stays true: its rule table is the catalogue, its commands exist."""

from __future__ import annotations

import re

from tests.conftest import REPO, run_cli


def readme() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


def test_rule_table_matches_the_catalogue():
    block = re.search(r"<!-- rules:start -->\n(.*?)<!-- rules:end -->", readme(), re.S)
    assert block, "README has the rules markers"
    listing = run_cli("rules", "--format", "markdown")
    assert listing.code == 0
    assert block.group(1) == listing.out, "regenerate with: python scripts/update_readme_rules.py"


def test_readme_shows_the_main_and_test_commands():
    text = readme()
    assert "sftgate demo" in text
    assert "python -m pytest" in text
    ci = (REPO / ".ci" / "run").read_text()
    assert "python -m pytest" in ci


def test_every_readme_command_exists():
    from sftgate.runners.cli.main import COMMANDS

    names = {name for name, _ in COMMANDS}
    used = set(re.findall(r"^sftgate ([a-z-]+)", readme(), re.M))
    assert used <= names, used - names
