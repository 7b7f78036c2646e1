"""The sftgate config: schema validation with key path, line and did-you-mean."""

from __future__ import annotations

import pytest

from sftgate.gates.frame.core import ConfigError, InputError
from sftgate.gates.readers import config


def write(tmp_path, text, name="sftgate.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_valid_config_loads_with_yaml12_floats(tmp_path):
    cfg = config.load(write(tmp_path, "model:\n  id: org/name\ntrain:\n  lr: 1e-4\n  seed: 1\n"))
    assert cfg.get("train.lr") == pytest.approx(1e-4)
    assert cfg.get("model.id") == "org/name"
    assert cfg.line("train.seed") == 5


@pytest.mark.parametrize(
    ("text", "expected", "reason"),
    [
        ("model:\n  id: a/b\ntrian:\n  lr: 0.1\n", [("trian", 3, "train")], "typo in a section"),
        ("model:\n  id: a/b\nlora:\n  rank: 8\n", [("lora.rank", 4, "r")], "a peft name for a key"),
        ("model:\n  id: a/b\ntrain:\n  lr: fast\n", [("train.lr", 4, None)], "wrong type"),
        ("data:\n  train: x.jsonl\n", [("<root>", 1, None)], "required key"),
        ("model:\n  id: a/b\n  name: x\ntrain:\n  learning_rate: 1\n",
         [("model.name", 3, "id"), ("train.learning_rate", 5, "lr")], "every problem, not the first"),
    ],
)
def test_config_errors_name_key_line_and_guess(tmp_path, text, expected, reason):
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, text))
    assert info.value.exit_code == 2
    got = [(p.key_path, p.line, p.did_you_mean) for p in info.value.problems]
    assert got == expected, reason


def test_config_that_is_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, "- a\n- b\n"))
    assert info.value.exit_code == 2


def test_bad_yaml_names_line(tmp_path):
    with pytest.raises(InputError) as info:
        config.load(write(tmp_path, "model:\n  id: [a\n"))
    assert info.value.exit_code == 2
    assert "sftgate.yaml:" in str(info.value)


def test_paths_resolve_against_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    cfg = config.load(write(tmp_path / "sub", "model:\n  id: a/b\ndata:\n  train: t.jsonl\n"))
    assert cfg.path_of("data.train") == tmp_path / "sub" / "t.jsonl"
    with pytest.raises(ConfigError):
        cfg.require_file("data.train")


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("sftgate.yaml", "model:\n  name: x\n", True),
        ("job.json", '{"model": {"name": "x"}}', False),
        ("job.yaml", "model:\n  id: a/b\n", True),
        ("job.yaml", "sftgate: 1\nmodel:\n  id: a/b\n", True),
        ("axolotl.yaml", "base_model: a/b\n", False),
    ],
)
def test_sftgate_config_or_foreign(tmp_path, name, text, expected):
    from sftgate.gates.readers import document

    assert config.is_sftgate_config(document.load(write(tmp_path, text, name))) is expected
