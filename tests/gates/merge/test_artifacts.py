"""Gate ``artifacts``: complete, safetensors-only, no remote code, corrupt files are findings."""

from __future__ import annotations

import contextlib
import json
import shutil
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.frame.core import InputError, Stage, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.merge import artifacts
from tests.conftest import FIXTURES

ART = FIXTURES / "artifacts"


def rules_of(folder, **kwargs):
    return sorted({f.rule for f in artifacts.check(model_dir=folder, **kwargs)})


CASES = [
    # (fixture folder, kwargs, expected rules, reason)
    ("clean", {}, [], "a complete transformers folder passes"),
    ("clean_sharded", {}, [], "a sharded folder whose index and shards agree passes"),
    ("adapter_clean", {}, [], "an adapter folder needs only adapter_config + adapter_model.safetensors"),
    ("mistral_clean", {"profile": "mistral"}, [], "params.json + tekken.json + consolidated.safetensors"),
    ("missing_artifact", {}, ["missing_artifact"], "no tokenizer.json, chat template or generation_config"),
    ("missing_artifact_shard", {}, ["missing_artifact"], "the index names a shard that is not there"),
    ("missing_artifact_mistral", {"profile": "mistral"}, ["missing_artifact"], "params.json alone"),
    ("clean", {"profile": "mistral"}, ["missing_artifact"], "a transformers folder is not a mistral-format one"),
    ("unsafe_weights", {}, ["unsafe_weights"], "pytorch_model.bin and training_args.bin are pickles"),
    ("unsafe_weights_only_pickle", {}, ["missing_artifact", "unsafe_weights"], "pickle weights, no safetensors"),
    ("unsafe_weights_adapter", {}, ["missing_artifact", "unsafe_weights"], "adapter_model.bin instead of safetensors"),
    ("remote_code", {}, ["remote_code"], "auto_map in config.json and a modeling .py file"),
    ("corrupt_artifact", {}, ["corrupt_artifact"], "a truncated safetensors file"),
    ("corrupt_artifact_header", {}, ["corrupt_artifact"], "a header length larger than the file"),
    ("corrupt_artifact_json", {}, ["corrupt_artifact"], "config.json that does not parse"),
]


@pytest.mark.parametrize(("folder", "kwargs", "expected", "reason"), CASES, ids=[c[0] + str(i) for i, c in enumerate(CASES)])
def test_rules_per_fixture(folder, kwargs, expected, reason):
    assert rules_of(ART / folder, **kwargs) == expected, reason


def test_remote_code_reports_both_the_auto_map_and_the_python_file():
    findings = list(artifacts.check(model_dir=ART / "remote_code"))
    locations = sorted(f.location for f in findings)
    assert any(loc.endswith("config.json:auto_map") for loc in locations)
    assert any(loc.endswith("modeling_custom.py") for loc in locations)
    assert {f.code for f in findings} == {"ART003"}


def test_every_pickle_is_reported():
    findings = [f for f in artifacts.check(model_dir=ART / "unsafe_weights") if f.rule == "unsafe_weights"]
    assert sorted(f.location.rsplit("/", 1)[-1] for f in findings) == ["pytorch_model.bin", "training_args.bin"]


def test_chat_template_in_tokenizer_config_counts(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(ART / "clean", folder)
    (folder / "chat_template.jinja").unlink()
    assert rules_of(folder) == ["missing_artifact"]
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    assert rules_of(folder) == []
    (folder / "tokenizer_config.json").write_text(json.dumps({}))
    assert rules_of(folder, require_chat_template=False) == []


def test_shard_missing_a_tensor_named_by_the_index(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(ART / "clean_sharded", folder)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    index["weight_map"]["c.weight"] = "model-00001-of-00002.safetensors"
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    assert rules_of(folder) == ["corrupt_artifact"]


def test_gate_result_and_metrics():
    result = run_gate("artifacts", Stage.MERGE, artifacts.check, model_dir=ART / "clean")
    assert result.status is Status.PASS
    assert result.metrics["kind"] == "model" and result.metrics["tensors"] == 1
    assert run_gate("artifacts", Stage.MERGE, artifacts.check, model_dir=ART / "corrupt_artifact").status is Status.FAIL


def test_missing_folder_is_input_error(tmp_path):
    with pytest.raises(InputError):
        list(artifacts.check(model_dir=tmp_path / "nope"))
    result = run_gate("artifacts", Stage.MERGE, artifacts.check, model_dir=tmp_path / "nope")
    assert (result.status, result.error_exit_code) == (Status.ERROR, 2)


def test_header_reader_matches_the_safetensors_library():
    from safetensors import safe_open

    path = ART / "clean_sharded" / "model-00002-of-00002.safetensors"
    with safe_open(str(path), "pt") as handle:
        keys = set(handle.keys())
    assert set(artifacts.read_safetensors_header(path)) == keys


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_header_reader_never_crashes_on_garbage(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("st") / "x.safetensors"
    path.write_bytes(blob)
    with contextlib.suppress(artifacts.CorruptSafetensors):  # a clean error, never another exception
        artifacts.read_safetensors_header(path)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_header_reader_agrees_with_the_library_on_mutations(tmp_path_factory, data):
    """Flip bytes of the header or cut the file: the reader rejects exactly what safetensors rejects."""
    from safetensors import safe_open

    good = (ART / "clean" / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", good[:8])
    cut = data.draw(st.integers(0, len(good)))
    blob = bytearray(good[:cut])
    if blob and data.draw(st.booleans()):
        pos = data.draw(st.integers(8, min(len(blob), 8 + n) - 1)) if len(blob) > 8 else 0
        blob[pos] = data.draw(st.integers(0, 255))
    path = tmp_path_factory.mktemp("st") / "x.safetensors"
    path.write_bytes(bytes(blob))
    try:
        artifacts.read_safetensors_header(path)
        ours = True
    except artifacts.CorruptSafetensors:
        ours = False
    try:
        with safe_open(str(path), "pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
                handle.get_tensor(key)
        theirs = True
    except Exception:
        theirs = False
    if theirs:  # whatever the library loads, the gate accepts (no false alarms)
        assert ours
    if cut < len(good):  # truncation is always caught
        assert not ours
