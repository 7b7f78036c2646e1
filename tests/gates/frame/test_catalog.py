"""The rule catalogue: DESIGN.md's rule names all exist, codes and names are unique, every rule
is documented, and every registry gate module imports without torch."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from sftgate.gates.frame import catalog, registry
from sftgate.gates.frame.core import Severity

# DESIGN.md "Rule names (stable; this is the initial catalogue)".
DESIGN_RULES = ["invalid_repo_id", "missing_namespace", "dash_separated_id", "url_not_id", "local_path_missing", "unpinned_revision", "not_found", "gated", "invalid_json_line", "not_an_object", "unknown_format", "missing_field", "empty_field", "wrong_type", "role_order", "last_turn_not_assistant", "completion_schema", "duplicate_example", "empty_dataset", "too_long", "eval_leak_exact", "eval_leak_normalized", "eval_leak_prompt", "eval_leak_ngram", "group_leak", "cases_leak", "no_json_start", "code_fence", "trailing_text", "unterminated_json", "truncated", "invalid_json", "duplicate_key", "non_finite_number", "missing_key", "unexpected_key", "type_mismatch", "range_mismatch", "enum_mismatch", "value_mismatch", "no_eos_token", "eos_not_appended", "eos_masked", "eos_truncated", "eos_not_in_stop_ids", "prompt_not_prefix", "double_bos", "template_mismatch", "implicit_system_prompt", "merge_mismatch", "merge_no_effect", "nan_weights", "missing_artifact", "unsafe_weights", "remote_code", "manifest_mismatch", "gate_skipped"]


def test_every_design_rule_exists():
    names = {rule.name for rule in catalog.all_rules()}
    assert set(DESIGN_RULES) - names == set()


def test_codes_and_names_are_unique_and_well_formed():
    rules = catalog.all_rules()
    assert len({r.code for r in rules}) == len(rules)
    assert len({r.name for r in rules}) == len(rules)
    for rule in rules:
        assert re.fullmatch(r"[A-Z]+\d{3}", rule.code), rule.code
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", rule.name), rule.name
        assert isinstance(rule.severity, Severity)
        assert rule.summary and rule.why and rule.fix, f"{rule.name} is documented"


@pytest.mark.parametrize("spec", registry.GATES, ids=lambda s: s.name)
def test_registry_gate_modules_exist_and_are_light(spec):
    code = f"import sys, {spec.module} as m; assert callable(m.check) and m.RULES; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False", f"{spec.module} imports torch at import time"
    if spec.preflight:
        assert callable(getattr(spec.load(), "from_config", None))
