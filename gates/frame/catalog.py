"""The rule catalogue: every rule of every gate, for ``sftgate rules`` and for the docs."""

from __future__ import annotations

import difflib
import importlib

from sftgate.gates.frame.core import Rule
from sftgate.gates.frame.registry import RULE_MODULES


def all_rules() -> list[Rule]:
    """Every rule, in registry order."""
    rules: list[Rule] = []
    for module_name in RULE_MODULES:
        rules.extend(importlib.import_module(module_name).RULES)
    return rules


def find(name_or_code: str) -> Rule | None:
    key = name_or_code.strip()
    for rule in all_rules():
        if key in (rule.name, rule.code) or key.upper() == rule.code:
            return rule
    return None


def close_matches(name_or_code: str) -> list[str]:
    names = [r.name for r in all_rules()] + [r.code for r in all_rules()]
    return difflib.get_close_matches(name_or_code, names, n=3, cutoff=0.6)
