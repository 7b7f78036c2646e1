"""The `sftgate tokenizer`, `sftgate data --tokenizer` and `sftgate labels` scripts load tokenizers without torch (as the
tokenizer extra installs them), with the same report; a caller's process keeps its torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.tokenizers import tokenizer_folders
from tests.conftest import REPO, run_cli

# run the script's own entry point (argv from sys.argv), then say on stderr whether torch was imported
SCRIPT = """
import sys
sys.argv = ["sftgate", *sys.argv[1:]]
from sftgate.runners.cli.main import main
code = main()
print(json.dumps({"code": code, "torch_imported": sys.modules.get("torch") is not None}), file=sys.stderr)
"""


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tokenizer_folders(tmp_path_factory.getbasetemp() / "tokenizers").base("tiny")


def script(*argv: str) -> tuple[dict, dict]:
    done = subprocess.run([sys.executable, "-c", "import json\n" + SCRIPT, *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    return json.loads(done.stdout), json.loads(done.stderr.strip().splitlines()[-1])


def _gates(report: dict) -> list[tuple[str, str, list[str]]]:
    return [(g["gate"], g["status"], sorted(f["rule"] for f in g["findings"])) for g in report["gates"]]


@pytest.mark.parametrize("command", ["tokenizer", "data", "labels"])
def test_the_script_loads_the_tokenizer_without_torch_and_reports_the_same(tokenizer, command, tmp_path):
    data = str(REPO / "fixtures" / "data" / "clean_messages.jsonl")
    if command == "tokenizer":
        argv = ["tokenizer", str(tokenizer), "--data", data]
    elif command == "data":
        argv = ["data", data, "--tokenizer", str(tokenizer), "--max-seq-len", "64"]
    else:  # tokenized rows, as another trainer writes them
        from fixtures.tokenized import clean_rows, write_rows
        from sftgate.gates.readers.tokenizer_io import load_tokenizer_cached

        rows = write_rows(clean_rows(load_tokenizer_cached(tokenizer)), tmp_path / "rows.parquet")
        argv = ["labels", str(rows), "--tokenizer", str(tokenizer)]
    argv = [*argv, "--format", "json"]
    report, state = script(*argv)
    assert state["torch_imported"] is False
    in_process = run_cli(*argv)  # this process (torch may be imported here): the same verdicts
    assert (state["code"], _gates(report)) == (in_process.code, _gates(in_process.report))
    assert "torch" not in sys.modules or sys.modules["torch"] is not None, "the caller's torch is untouched"
