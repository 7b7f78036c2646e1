"""The stop ids generation uses when generation_config.json has no eos_token_id: the finding says what was used."""

from __future__ import annotations

import json

from sftgate.gates.frame.core import Stage
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.readers.tokenizer_io import load_tokenizer_cached
from sftgate.gates.tokenizer import eos
from sftgate.gates.tokenizer.stop_ids import served_stop_ids


def test_generation_config_without_eos_names_the_fallback(folders, tmp_path):
    generation = tmp_path / "generation_config.json"
    generation.write_text(json.dumps({"bos_token_id": 128000}))
    result = run_gate("eos", Stage.TOKENIZER, eos.check, tokenizer=folders.base("llama3"), generation_config=generation)
    (finding,) = result.findings
    assert finding.rule == "eos_not_in_stop_ids"
    assert finding.location == f"{generation}:eos_token_id"
    assert finding.evidence["stop_ids_from"] == "the tokenizer's eos_token" and finding.evidence["file_found"]
    assert finding.suggestion == '"eos_token_id": [128001, 128009]'
    assert result.metrics["stop_ids_from"] == "the tokenizer's eos_token"


def test_stop_ids_come_from_config_json_before_the_tokenizer(folders):
    folder = folders.variant("llama3", name="stop-ids-from-config-json", generation_eos=None)
    (folder / "config.json").write_text(json.dumps({"eos_token_id": [128001, 128009]}))
    tok = load_tokenizer_cached(folder)
    stop = served_stop_ids(tok, folder, None)
    assert (stop.ids, stop.used, stop.file) == ([128001, 128009], "config.json", None)
    result = run_gate("eos", Stage.TOKENIZER, eos.check, tokenizer=folder)
    assert result.findings == [] and result.metrics["stop_ids_from"] == "config.json"


def test_stop_ids_from_the_generation_config(folders):
    folder = folders.base("llama3")
    stop = served_stop_ids(load_tokenizer_cached(folder), folder, None)
    assert stop.used == "generation_config.json" and stop.ids == [128001, 128009]
