"""The sftgate config: schema validation with key path, line and did-you-mean."""

from __future__ import annotations

import pytest

from gates import config
from gates.core import ConfigError, InputError


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
    ("text", "expect", "reason"),
    [
        ("model:\n  id: a/b\ntrian:\n  lr: 0.1\n", ["line 3", "trian", "'train'"], "typo in a section"),
        ("model:\n  id: a/b\nlora:\n  rank: 8\n", ["line 4", "lora.rank", "'r'"], "typo in a key"),
        ("model:\n  id: a/b\ntrain:\n  lr: fast\n", ["line 4", "train.lr"], "wrong type"),
        ("data:\n  train: x.jsonl\n", ["model"], "required key"),
        ("- a\n- b\n", ["mapping"], "not a mapping"),
    ],
)
def test_config_errors_name_key_line_and_guess(tmp_path, text, expect, reason):
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, text))
    message = str(info.value)
    for part in expect:
        assert part in message, reason


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
    from gates import document

    assert config.is_sftgate_config(document.load(write(tmp_path, text, name))) is expected
