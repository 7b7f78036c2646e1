"""Exit 2, not 3, for every input the contract calls bad; and the parsers never raise anything else.

The cases the hostile run found exiting 3 (an internal error) where the contract says 2: YAML
merge keys (now supported), recursive aliases, tag errors, complex and null keys, 10^5 nested
brackets in a config, schema, manifest, safetensors header or tokenizer_config.json, integers
over 4300 digits, a lone surrogate in a case, manifests with fields of the wrong type, dangling
links and loops inside folders, Ctrl-C during ``sftgate data``. Hypothesis drives the readers:
whatever the bytes, a reader returns or raises :class:`InputError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers import document, textfile
from tests.conftest import FIXTURES, REPO, run_cli
from tests.hostile.conftest import DEEP, HUGE_INT, assert_no_bug, assert_user_error

CLEAN_RELEASE = FIXTURES / "release" / "clean"
TRAIN = str(FIXTURES / "data" / "clean_prompt_completion.jsonl")


# --------------------------------------------------------------------------- YAML


def test_yaml_merge_keys_are_supported(tmp_path: Path) -> None:
    doc = document.loads("base: &b {a: 1, b: 2}\nother: &o {c: 3}\nx:\n  <<: [*b, *o]\n  b: 9\n", tmp_path / "x.yaml")
    assert doc.data["x"] == {"a": 1, "b": 9, "c": 3}
    config = tmp_path / "sftgate.yaml"
    config.write_text("sftgate: 1\nmodel:\n  <<: {id: mistralai/Mistral-7B-Instruct-v0.3}\n")
    result = run_cli("check", str(config), "--format", "json")
    assert result.code == 0, result.out
    assert result.statuses()["model-id"] == "pass"


YAML_ERRORS = {
    "recursive alias": "a: &a [*a]\n",
    "recursive mapping alias": "a: &a {b: *a}\n",
    "!!int abc": "sftgate: 1\nmodel: {id: !!int abc}\n",
    "!!float x": "x: !!float nope\n",
    "!!binary": "x: !!binary 'a'\n",
    "!!timestamp": "x: !!timestamp yesterday\n",
    "unknown tag": "x: !python/object:os.system ls\n",
    "complex key": "? [a, b]\n: 1\n",
    "mapping key": "? {a: 1}\n: 1\n",
    "bad merge": "x:\n  <<: 5\n",
    "a 5000-digit integer": f"x: {HUGE_INT}\n",
    "deep nesting": "x: " + "[" * 500 + "]" * 500 + "\n",
    "10^5 brackets": DEEP,
}


@pytest.mark.parametrize("name", list(YAML_ERRORS))
def test_bad_yaml_is_an_input_error(name: str, tmp_path: Path) -> None:
    with pytest.raises(InputError):
        document.loads(YAML_ERRORS[name], tmp_path / "x.yaml")
    config = tmp_path / "sftgate.yaml"
    config.write_text(YAML_ERRORS[name])
    for command in ("check", "fix-model-ids"):
        assert_user_error(run_cli(command, str(config)))


def test_null_and_scalar_keys_become_text(tmp_path: Path) -> None:
    doc = document.loads("~: 1\n1: a\nyes: b\n2.5: c\n", tmp_path / "x.yaml")
    assert doc.data == {"~": 1, "1": "a", "yes": "b", "2.5": "c"}
    config = tmp_path / "sftgate.yaml"
    config.write_text("sftgate: 1\n~: 1\nmodel: {id: a/b}\n")
    assert_user_error(run_cli("check", str(config)))  # an unknown key "~", with its line


@given(st.text(max_size=200))
@settings(max_examples=300)
def test_the_document_reader_only_returns_or_raises_input_error(text: str) -> None:
    with contextlib.suppress(InputError):
        document.loads(text, Path("h.yaml"))


yaml_atoms = st.sampled_from(["a", "1", "~", "&x", "*x", "<<", "!!int", "!!str", "[", "]", "{", "}", ":", ",", "- ",
                              "\n", "  ", "? ", "'", '"', HUGE_INT[:5000], "&y [*x, *x]", "*y"])


@given(st.lists(yaml_atoms, max_size=40).map(" ".join))
@settings(max_examples=300)
def test_the_document_reader_survives_yaml_shaped_noise(text: str) -> None:
    with contextlib.suppress(InputError):
        document.loads(text, Path("h.yaml"))


@given(st.binary(max_size=300))
def test_decoding_any_bytes_gives_text_or_an_input_error(raw: bytes) -> None:
    with contextlib.suppress(InputError):
        textfile.decode(raw, display="x")


@given(st.binary(max_size=400))
@settings(max_examples=200)
def test_the_jsonl_reader_never_raises(raw: bytes) -> None:
    import io

    from sftgate.gates.readers.jsonl_reader import read_lines

    counts = {"lines": 0, "blank_lines": 0, "crlf_lines": 0, "bom": 0}
    list(read_lines(io.BytesIO(raw), 0, None, 1, counts, [], None))


@given(st.lists(st.text(max_size=60) | st.sampled_from(['{"id": "c1", "prompt": "\\ud800"}', "[" * 2000,
                                                        '{"id": 1, "prompt": "p", "n": ' + HUGE_INT + "}"]),
                min_size=1, max_size=5))
@settings(max_examples=150, deadline=None)
def test_the_cases_reader_only_raises_input_error(lines: list[str]) -> None:
    import tempfile

    from sftgate.gates.readers.cases import load_cases

    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8", errors="surrogatepass") as handle:
        handle.write("\n".join(lines))
        handle.flush()
        with contextlib.suppress(InputError):
            load_cases(handle.name)


# --------------------------------------------------------------------------- deep and huge, in every kind of file


def _release(tmp_path: Path) -> Path:
    folder = tmp_path / "release"
    shutil.copytree(CLEAN_RELEASE, folder)
    return folder


def _safetensors_header(folder: Path, header: bytes) -> None:
    data = (folder / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + data[8 + n:])


@pytest.mark.parametrize("what", ["manifest deep", "manifest 5000 digits", "header deep", "header 5000 digits",
                                  "config.json deep", "tokenizer_config.json deep", "dangling link", "link loop",
                                  "folder loop"])
def test_hostile_files_inside_a_release_folder(what: str, tmp_path: Path) -> None:
    folder = _release(tmp_path)
    manifest = folder / "sftgate-manifest.json"
    if what == "manifest deep":
        manifest.write_text(DEEP)
    elif what == "manifest 5000 digits":
        manifest.write_text('{"sftgate_manifest": ' + HUGE_INT + ', "files": {}}')
    elif what == "header deep":
        _safetensors_header(folder, DEEP.encode())
    elif what == "header 5000 digits":
        _safetensors_header(folder, ('{"w": {"dtype": "F32", "shape": [' + HUGE_INT + '], "data_offsets": [0, 4]}}').encode())
    elif what.endswith("json deep"):
        (folder / what.split()[0]).write_text(DEEP)
    elif what == "dangling link":
        os.symlink(folder / "nowhere", folder / "extra.json")
    elif what == "link loop":
        os.symlink("loop.json", folder / "loop.json")
    else:
        (folder / "sub").mkdir()
        os.symlink("..", folder / "sub" / "up")
    result = run_cli("release", str(folder), "--format", "json")
    assert_no_bug(result)
    assert result.code in (1, 2)  # a finding (the release is not publishable), or the input error


MANIFEST = json.loads((CLEAN_RELEASE / "sftgate-manifest.json").read_text())
WRONG_TYPES = [(key, bad) for key in MANIFEST for bad in ("x", 5, None, [], {}, True) if type(bad) is not type(MANIFEST[key])]
WRONG_TYPES += [("gates", [1]), ("gates", [{"gate": 5, "findings": "x"}]), ("files", {"a.json": "x"}),
                ("files", {"a.json": {"sha256": 5}}), ("base_model", {"id": 5}), ("provenance", {"base_model": "x"})]


@pytest.mark.parametrize(("key", "bad"), WRONG_TYPES, ids=[f"{k}={json.dumps(b)}" for k, b in WRONG_TYPES])
def test_a_manifest_field_of_the_wrong_type_is_a_finding(key: str, bad: object, tmp_path: Path) -> None:
    folder = _release(tmp_path)
    (folder / "sftgate-manifest.json").write_text(json.dumps({**MANIFEST, key: bad}))
    result = run_cli("release", str(folder), "--format", "json")
    assert_no_bug(result)
    if bad is None and key in ("base_model",):
        return  # "no base model recorded" is its own (warning) finding
    assert result.code == 1, result.out[-600:]
    assert "manifest_mismatch" in result.rules()


def test_hostile_files_inside_a_tokenizer_folder(tmp_path: Path) -> None:
    from fixtures.tokenizers import build_tiny

    base = build_tiny(tmp_path / "base")
    for name, text in (("tokenizer_config.json", DEEP), ("tokenizer_config.json", '{"model_max_length": ' + HUGE_INT + "}"),
                       ("generation_config.json", DEEP), ("tokenizer.json", DEEP)):
        folder = tmp_path / f"tok-{name}-{len(text)}"
        shutil.copytree(base, folder)
        (folder / name).write_text(text)
        assert_user_error(run_cli("tokenizer", str(folder)))
    looped = tmp_path / "looped"
    shutil.copytree(base, looped)
    (looped / "tokenizer_config.json").unlink()
    os.symlink("tokenizer_config.json", looped / "tokenizer_config.json")
    assert_no_bug(run_cli("tokenizer", str(looped)))


@pytest.mark.parametrize(("argv", "content"), [
    (("data", "{X}"), '{"prompt": "a", "completion": "b", "n": ' + HUGE_INT + "}\n"),
    (("data", TRAIN, "--cases", "{X}"), '{"id": "c1", "prompt": "p", "n": ' + HUGE_INT + "}\n"),
    (("data", TRAIN, "--cases", "{X}"), '{"id": "c1", "prompt": "\\ud800 a lone surrogate"}\n'),
    (("json-check", "{X}", "--schema", str(FIXTURES / "strict_json" / "schema.json")),
     '{"id": "c1", "output": "{\\"name\\": ' + HUGE_INT + '}", "expected": ' + HUGE_INT + "}\n"),
])
def test_huge_numbers_and_lone_surrogates_in_data_and_cases(argv: tuple[str, ...], content: str, tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(content)
    result = run_cli(*(str(path) if a == "{X}" else a for a in argv))
    assert_no_bug(result)
    if "--cases" in argv:
        assert result.code == 2


def test_a_log_folder_with_dangling_links_and_loops(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "job.log").write_text("OSError: mistralai-Mistral-7B-Instruct is not a local folder and is not a valid "
                                  "model identifier listed on 'https://huggingface.co/models'\n")
    os.symlink(logs / "nowhere.log", logs / "dangling.log")
    os.symlink("loop.log", logs / "loop.log")
    (logs / "sub").mkdir()
    os.symlink("..", logs / "sub" / "up")
    result = run_cli("triage", str(logs), "--format", "json")
    assert_no_bug(result)
    assert result.code == 1 and "dash_separated_id" in result.rules()


# --------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_during_data_exits_130_quietly(tmp_path: Path) -> None:
    big = tmp_path / "train.jsonl"
    line = json.dumps({"prompt": "question " * 20, "completion": "answer " * 5}) + "\n"
    with big.open("w") as out:
        for i in range(200_000):
            out.write(line.replace("question", f"q{i}", 1))
    proc = subprocess.Popen([sys.executable, "-m", "sftgate.runners.cli.main", "data", str(big), "--eval", str(big),
                             "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                            start_new_session=True)
    deadline = time.monotonic() + 20
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    while time.monotonic() < deadline and proc.poll() is None:
        if children.exists() and children.read_text().split():
            break  # the worker processes are up
        time.sleep(0.05)
    time.sleep(0.3)
    if proc.poll() is not None:
        pytest.skip("the scan finished before it could be interrupted")
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C: the whole process group
    _, err = proc.communicate(timeout=30)
    text = err.decode("utf-8", "replace")
    assert proc.returncode == 130, text[-800:]
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-800:]
