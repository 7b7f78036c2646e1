"""The pytest plugin: gates as test items, JUnit per gate, the sftgate fixtures, --require-gpu.

Every test runs an inner pytest session with ``pytester`` (in-process, so it is fast); the plugin
is active there through its ``pytest11`` entry point, as it is for users.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sftgate.gates.frame import preflight
from sftgate.gates.frame.core import GateResult, Rule, Severity, Stage, Status
from sftgate.gates.frame.report import Report

pytest_plugins = ("pytester",)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "ci"


@pytest.fixture(scope="module", autouse=True)
def _lazy_imports_stay_loaded() -> None:
    """pytester unloads the modules an inner run imported first; gates import yaml, jsonschema and
    the gate modules lazily and cache objects built from them, so import them out here once."""
    preflight.run_preflight(FIXTURES / "clean_project" / "sftgate.yaml")  # numpy, huggingface_hub, ...
    with contextlib.suppress(Exception):
        preflight.run_preflight(FIXTURES / "sftgate_invalid.yaml")


@pytest.fixture(autouse=True)
def _not_under_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs must not annotate, or append fake reports to, this CI job's real step summary."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An inner pytest run; hypothesis' plugin is left out, it re-imports itself on every run (2 s)."""
    return pytester.runpytest("-p", "no:hypothesispytest", *args)


def _junit(path: Path) -> list[ET.Element]:
    return list(ET.parse(path).getroot().iter("testcase"))


def _copy(pytester: pytest.Pytester, name: str, as_name: str | None = None) -> Path:
    target = pytester.path / (as_name or Path(name).name)
    target.write_text((FIXTURES / name).read_text("utf-8"), "utf-8")
    return target


# --------------------------------------------------------------------------- a fake report

_RULE = Rule("TST001", "test_rule", Severity.ERROR, "fake", "a fake rule", "why", "fix")
_WARN = Rule("TST002", "test_warning", Severity.WARNING, "fake", "a fake warning", "why", "fix")

# (gate, stage, status, required, expected pytest outcome, reason)
FAKE_GATES = [
    ("model-id", Stage.CONFIG, Status.PASS, True, "passed", "a passing gate passes"),
    ("dataset-schema", Stage.DATA, Status.FAIL, True, "failed", "a failing gate fails with its findings"),
    ("split-isolation", Stage.DATA, Status.ERROR, True, "errors", "a gate that could not run is a test error"),
    ("prompt-alignment", Stage.TOKENIZER, Status.SKIP, True, "failed", "a required skip is never a pass"),
    ("eos", Stage.TOKENIZER, Status.SKIP, False, "skipped", "an optional skip is a skip"),
]


def _fake_report(path: object, **_: object) -> Report:
    report = Report(command=f"check {path}")
    for gate, stage, status, required, _outcome, _reason in FAKE_GATES:
        findings = []
        if status is Status.FAIL:
            findings = [
                _RULE.finding("bad value 'x'", "train.jsonl:3", suggestion="y"),
                _WARN.finding("odd value 'z'", "train.jsonl:7"),
            ]
        if gate == "model-id":
            findings = [_WARN.finding("a warning on a passing gate", "job.json:model.name")]
        reason = "boom:\x07 could not read" if status is Status.ERROR else ("no tokenizer" if status is Status.SKIP else None)
        report.add(GateResult(gate, stage, status, 0.01, findings, required=required, reason=reason))
    return report


@pytest.fixture
def fake_preflight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "run_preflight", _fake_report)


# --------------------------------------------------------------------------- gates as test items


def test_plugin_is_registered_through_its_entry_point(pytester: pytest.Pytester):
    result = _run(pytester, "--help")
    result.stdout.fnmatch_lines(["*--sftgate=CONFIG*", "*--require-gpu*"])


def test_each_gate_is_one_item_with_the_pytest_outcome_of_its_status(pytester, fake_preflight):
    config = pytester.makefile(".yaml", sftgate="model: {id: org/name}\n")
    junit = pytester.path / "gates.xml"
    result = _run(pytester, "--sftgate", str(config), f"--junitxml={junit}", "-rA")
    expected = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    for *_, outcome, _reason in FAKE_GATES:
        expected[outcome] += 1
    result.assert_outcomes(**expected)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # the failure text carries the findings' codes and rules; no Python traceback for a gate
    result.stdout.fnmatch_lines(["*TST001 test_rule  train.jsonl:3*"])
    assert "Traceback" not in result.stdout.str()
    assert "runtest" not in result.stdout.str()


def test_junit_has_one_testcase_per_gate_named_after_gate_and_stage(pytester, fake_preflight):
    config = pytester.makefile(".yaml", sftgate="model: {id: org/name}\n")
    junit = pytester.path / "reports" / "gates.xml"
    _run(pytester, "--sftgate", str(config), f"--junitxml={junit}")
    cases = _junit(junit)
    assert [c.get("name") for c in cases] == [g[0] for g in FAKE_GATES]
    for case, (_gate, stage, _status, _req, outcome, reason) in zip(cases, FAKE_GATES, strict=True):
        assert case.get("classname", "").endswith(f"sftgate.yaml.{stage.value}"), reason
        children = {child.tag for child in case}
        want = {"passed": set(), "failed": {"failure"}, "errors": {"error"}, "skipped": {"skipped"}}[outcome]
        assert want <= children, reason
        assert not ({"failure", "error", "skipped"} - want) & children, reason
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert props["sftgate.gate"] == _gate and props["sftgate.stage"] == stage.value, reason
    failure = next(c for c in cases if c.get("name") == "dataset-schema").find("failure")
    assert failure is not None and "test_rule" in (failure.text or "") + failure.get("message", "")


def test_gates_are_selectable_by_stage_and_gate_name(pytester, fake_preflight):
    config = pytester.makefile(".yaml", sftgate="model: {id: org/name}\n")
    result = _run(pytester, "--sftgate", str(config), "-k", "config or eos")
    result.assert_outcomes(passed=1, skipped=1, deselected=3)
    assert result.ret == pytest.ExitCode.OK


def test_without_paths_only_the_gates_run_and_with_paths_both_run(pytester, fake_preflight):
    config = pytester.makefile(".yaml", sftgate="model: {id: org/name}\n")
    pytester.makepyfile(test_user="def test_mine():\n    assert True\n")
    only_gates = _run(pytester, "--sftgate", str(config), "-k", "config")
    only_gates.assert_outcomes(passed=1, deselected=4)
    both = _run(pytester, "test_user.py", "--sftgate", str(config), "-k", "config or mine")
    both.assert_outcomes(passed=2, deselected=4)


def test_github_actions_gets_annotations_and_a_step_summary(pytester, fake_preflight, monkeypatch):
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    config = pytester.makefile(".yaml", sftgate="model: {id: org/name}\n")
    result = _run(pytester, "--sftgate", str(config))
    result.stdout.fnmatch_lines(["::error file=train.jsonl,line=3,title=TST001 test_rule::*"])
    assert "dataset-schema" in summary.read_text("utf-8")


# --------------------------------------------------------------------------- real gates


@pytest.mark.parametrize(
    ("fixture", "outcome", "rules", "reason"),
    [
        ("clean.json", "passed", set(), "a valid slash-form model ID passes"),
        ("dash_separated_id.json", "failed", {"dash_separated_id"}, "org-name instead of org/name fails"),
    ],
)
def test_foreign_config_through_the_model_id_gate(pytester, fixture, outcome, rules, reason):
    config = _copy(pytester, fixture, "job.json")
    junit = pytester.path / "gates.xml"
    result = _run(pytester, "--sftgate", str(config), f"--junitxml={junit}")
    result.assert_outcomes(**{outcome: 1})
    (case,) = _junit(junit)
    assert case.get("name") == "model-id", reason
    assert case.get("classname", "").endswith("job.json.config"), reason
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert set(filter(None, (props.get("sftgate.rules") or "").split(","))) == rules, reason
    if rules:
        result.stdout.fnmatch_lines(["*MID003 dash_separated_id*"])


PREFLIGHT_GATES = [
    ("config", "model-id"), ("data", "dataset-schema"), ("data", "split-isolation"),
    ("tokenizer", "prompt-alignment"), ("tokenizer", "eos"), ("tokenizer", "embeddings"), ("tokenizer", "model-config"),
]


@pytest.mark.parametrize(
    ("project", "failing", "reason"),
    [
        ("clean_project", set(), "a clean project: every gate that runs passes"),
        ("eval_leak_exact", {"split-isolation"}, "an eval example in train fails split-isolation only"),
    ],
)
def test_sftgate_config_gives_one_testcase_per_preflight_gate(pytester, project, failing, reason):
    for name in ("sftgate.yaml", "train.jsonl", "eval.jsonl"):
        _copy(pytester, f"{project}/{name}", name)
    junit = pytester.path / "gates.xml"
    result = _run(pytester, "--sftgate", "sftgate.yaml", f"--junitxml={junit}")
    cases = _junit(junit)
    assert [(c.get("classname", "").rsplit(".", 1)[-1], c.get("name")) for c in cases] == PREFLIGHT_GATES, reason
    failed = {c.get("name") for c in cases if c.find("failure") is not None or c.find("error") is not None}
    assert failed == failing, reason
    assert result.ret == (pytest.ExitCode.TESTS_FAILED if failing else pytest.ExitCode.OK), reason
    if failing:
        result.stdout.fnmatch_lines(["*LEAK001 eval_leak_exact*"])


def test_a_bad_config_is_a_collection_error_without_traceback(pytester):
    config = _copy(pytester, "sftgate_invalid.yaml", "sftgate.yaml")
    result = _run(pytester, "--sftgate", str(config))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*sftgate: error:*invalid config*", "*revison*"])
    assert "Traceback" not in result.stdout.str()


# --------------------------------------------------------------------------- fixtures


def test_sftgate_report_fixture_runs_the_gates_of_a_config(pytester, fake_preflight):
    pytester.makefile(".yaml", sftgate="model: {id: org/name}\n")
    pytester.makepyfile(
        test_user="""
        from sftgate.runners.integrations.pytest_plugin import format_report

        def test_default_config(sftgate_report):
            report = sftgate_report()
            assert [g.gate for g in report.gates][:2] == ["model-id", "dataset-schema"]
            assert report.passed is False
            assert "TST001" in format_report(report)

        def test_explicit_config_is_cached(sftgate_report):
            assert sftgate_report("sftgate.yaml") is sftgate_report("sftgate.yaml")
        """
    )
    _run(pytester).assert_outcomes(passed=2)


def test_sftgate_report_fixture_fails_a_test_on_a_bad_config_without_traceback(pytester):
    _copy(pytester, "sftgate_invalid.yaml", "sftgate.yaml")
    pytester.makepyfile(test_user="def test_it(sftgate_report):\n    sftgate_report()\n")
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*sftgate: error:*invalid config*", "*revison*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.slow
def test_tiny_model_fixture_builds_an_offline_model(pytester):
    """In a subprocess: an in-process inner run would unload torch from sys.modules afterwards."""
    pytester.makepyfile(
        test_user="""
        def test_model(sftgate_tiny_model, sftgate_tiny_tokenizer):
            assert (sftgate_tiny_model / "config.json").is_file()
            assert any(sftgate_tiny_model.glob("*.safetensors"))
            assert any(sftgate_tiny_tokenizer.iterdir())
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:hypothesispytest", timeout=300)
    result.assert_outcomes(passed=1)


@pytest.mark.gpu
def test_tiny_model_runs_on_the_gpu(sftgate_tiny_model):
    """What the gpu workflow's `pytest -m gpu --require-gpu` runs here: a forward pass on CUDA."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(sftgate_tiny_model).to("cuda")
    ids = torch.tensor([[1, 2, 3, 4]], device="cuda")
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.is_cuda and logits.shape[:2] == (1, 4)
    assert torch.isfinite(logits).all()


# --------------------------------------------------------------------------- markers and --require-gpu

GPU_TESTS = """
import pytest

@pytest.mark.gpu
def test_on_gpu():
    assert True

@pytest.mark.slow
def test_slow():
    assert True

def test_cpu():
    assert True
"""


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide any GPU, so these tests mean the same on a GPU machine."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


@pytest.mark.parametrize(
    ("args", "cuda", "ret", "outcomes", "reason"),
    [
        ((), False, pytest.ExitCode.OK, {"passed": 2, "skipped": 1}, "gpu tests skip without a GPU"),
        (("--require-gpu",), False, pytest.ExitCode.TESTS_FAILED, {"passed": 2, "skipped": 1},
         "--require-gpu fails when every gpu test skipped"),
        (("--require-gpu", "-m", "not gpu"), False, pytest.ExitCode.TESTS_FAILED, {"passed": 2, "deselected": 1},
         "--require-gpu fails when no gpu test was selected"),
        (("--require-gpu",), True, pytest.ExitCode.OK, {"passed": 3}, "--require-gpu passes when a gpu test ran"),
        (("--require-gpu", "-m", "gpu"), True, pytest.ExitCode.OK, {"passed": 1, "deselected": 2},
         "the GPU job's own selection"),
    ],
)
def test_gpu_marker_and_require_gpu(pytester, monkeypatch, no_gpu, args, cuda, ret, outcomes, reason):
    import sftgate.runners.integrations.pytest_plugin as plugin

    monkeypatch.setattr(plugin, "cuda_available", lambda: cuda)  # where the setup hook looks it up
    pytester.makepyfile(test_gpu=GPU_TESTS)
    result = _run(pytester, "--strict-markers", *args)
    result.assert_outcomes(**outcomes)
    assert result.ret == ret, reason
    if ret == pytest.ExitCode.TESTS_FAILED:
        result.stdout.fnmatch_lines(["*--require-gpu: no test marked gpu ran*"])


def test_require_gpu_fails_on_this_machine_without_gpu(pytester, no_gpu):
    """No monkeypatching of the detection: CUDA_VISIBLE_DEVICES="" hides every GPU."""
    pytester.makepyfile(test_gpu=GPU_TESTS)
    result = _run(pytester, "--require-gpu")
    result.assert_outcomes(passed=2, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_markers_are_declared_for_users(pytester):
    result = _run(pytester, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.gpu:*", "@pytest.mark.slow:*"])


def test_plugin_import_is_light():
    """The plugin loads in every pytest session: no torch, transformers or gates at import."""
    code = (
        "import sys, sftgate.runners.integrations.pytest_plugin; "
        "heavy = {'torch', 'transformers', 'peft', 'datasets', 'tokenizers', 'sftgate.gates.frame.preflight'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_gpu_detection_needs_no_torch_import_without_a_driver():
    import sftgate.runners.integrations.pytest_session as session

    if any(Path(p).exists() for p in session._GPU_DEVICE_FILES):
        pytest.skip("this machine has a GPU driver: detection imports torch here")
    code = "import sys, sftgate.runners.integrations.pytest_session as p; print(p.cuda_available(), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("arg", "ret", "reason"),
    [
        ("missing.yaml", pytest.ExitCode.USAGE_ERROR, "a missing config is a usage error"),
        ("empty_folder", pytest.ExitCode.USAGE_ERROR, "a folder without sftgate.yaml is a usage error"),
        ("project", pytest.ExitCode.OK, "a folder with sftgate.yaml runs its gates"),
    ],
)
def test_sftgate_option_takes_a_config_or_its_folder(pytester, fake_preflight, arg, ret, reason):
    (pytester.path / "empty_folder").mkdir()
    (pytester.path / "project").mkdir()
    (pytester.path / "project" / "sftgate.yaml").write_text("model: {id: org/name}\n", "utf-8")
    result = _run(pytester, "--sftgate", arg, "-k", "config")
    assert result.ret == ret, reason
    assert "Traceback" not in result.stdout.str() + result.stderr.str(), reason
