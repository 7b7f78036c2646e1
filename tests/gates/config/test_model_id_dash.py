"""The dash form ``org-name`` for organisations no table knows, and relative paths that are not Hub IDs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sftgate.gates.config import known_models, model_id_dash, model_id_diagnosis
from sftgate.gates.config.hub_id_grammar import is_valid_repo_id
from sftgate.gates.frame.core import Severity

# The corpus's misses: (dash form, the real ID, certain)
CORPUS = [
    ("axolotl-ai-co-gemma-3-1b-it", "axolotl-ai-co/gemma-3-1b-it", True),
    ("axolotl-quants-Llama-3.1-8B-bnb-4bit", "axolotl-quants/Llama-3.1-8B-bnb-4bit", True),
    ("mistral-community-Mixtral-8x22B-v0.1", "mistral-community/Mixtral-8x22B-v0.1", True),
    ("deepcogito-cogito-v1-preview-llama-3B", "deepcogito/cogito-v1-preview-llama-3B", True),
    ("agentica-org-DeepCoder-14B-Preview", "agentica-org/DeepCoder-14B-Preview", True),
    ("hugging-quants-Meta-Llama-3.1-8B-Instruct-AWQ-INT4", "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4", True),
    ("LnL-AI-TinyLlama-1.1B-Chat-v1.0", "LnL-AI/TinyLlama-1.1B-Chat-v1.0", True),
    ("OpenMOSS-Team-moss-moon-003-sft", "OpenMOSS-Team/moss-moon-003-sft", True),
    ("ISTA-DASLab-Meta-Llama-3-8B-AQLM-2Bit-1x16", "ISTA-DASLab/Meta-Llama-3-8B-AQLM-2Bit-1x16", True),
    ("replit-replit-code-v1-3b", "replit/replit-code-v1-3b", False),
    ("acme-labs-Llama-3-8B-sft", "acme-labs/Llama-3-8B-sft", False),
    ("my-team-qwen2.5-7b-lora", "my-team/qwen2.5-7b-lora", False),
]


@pytest.mark.parametrize(("value", "repo_id", "certain"), CORPUS, ids=[c[0] for c in CORPUS])
def test_dash_forms_of_the_corpus(value, repo_id, certain):
    d = model_id_diagnosis.diagnose(value)
    assert d.rule is not None and d.rule.name == "dash_separated_id"
    if certain:
        assert (d.suggestion, d.confident, d.severity) == (repo_id, True, None), "a known org: an error, fixable"
    else:
        assert d.confident is False and d.severity is Severity.WARNING, "a guess is a warning"
        assert repo_id in d.evidence["candidates"], "every plausible split is listed"


@pytest.mark.parametrize(("value", "first"), [
    ("replit-replit-code-v1-3b", "replit/replit-code-v1-3b"),  # the org's name echoed: no uppercase needed
    ("acme-labs-Llama-3-8B-sft", "acme-labs/Llama-3-8B-sft"),  # a family after the dash
    ("zeta-7B-chat", "zeta/7B-chat"),
])
def test_the_likeliest_split_comes_first(value, first):
    assert model_id_dash.plausible_splits(value)[0] == tuple(first.split("/"))


def test_bare_family_names_are_not_dash_forms():
    for value in ("TinyLlama-1.1B-Chat-v1.0", "Qwen-7B", "Mistral-7B-Instruct-v0.3"):
        d = model_id_diagnosis.diagnose(value)
        assert d.rule.name == "missing_namespace", value


def test_orgs_in_the_hf_cache_count_as_known():
    d = model_id_diagnosis.diagnose("my-lab-tiny-model", cached_ids=("my-lab/other-model",))
    assert (d.suggestion, d.confident) == ("my-lab/tiny-model", True)


def test_known_orgs_are_data_without_a_new_ambiguity():
    orgs = known_models.KNOWN_ORGS
    assert len(orgs) >= 140 and len({o.lower() for o in orgs}) == len(orgs)
    prefixes = {(a, b) for a in orgs for b in orgs if a != b and b.lower().startswith(a.lower() + "-")}
    assert prefixes == {("google", "google-bert"), ("google", "google-t5"), ("openai", "openai-community")}


_alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
_org_token = st.text(_alnum + "ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8)
# Organisations of every shape: lowercase, digits first, dashes, mixed case, "-ai"/"-org" endings
orgs = st.lists(_org_token, min_size=1, max_size=3).map("-".join) | st.builds(
    lambda a, s: f"{a}-{s}", _org_token, st.sampled_from(["ai", "org", "labs", "team", "community", "hf", "quants"]))
names = st.lists(st.text(_alnum + "ABCDEFGHIJKLMNOPQRSTUVWXYZ._", min_size=1, max_size=10), min_size=1,
                 max_size=4).map("-".join)


@settings(max_examples=400, deadline=None)
@given(orgs, names)
def test_any_org_name_in_dash_form_is_flagged_and_a_guess_is_never_an_error(org, name):
    repo_id = f"{org}/{name}"
    assume(is_valid_repo_id(repo_id))
    dashed = f"{org}-{name}"
    assume(len(dashed) <= 96 and not Path(dashed).exists())
    assume(known_models.canonical_id(dashed) is None and known_models.family_org(dashed) is None)
    d = model_id_diagnosis.diagnose(dashed)
    assert d.rule is not None and d.rule.name == "dash_separated_id", dashed
    if d.severity is not Severity.WARNING:
        assert d.confident, "an error-level suggestion is never a guess"
    else:
        assert not d.confident
    readings = d.evidence.get("candidates") or [d.suggestion]
    if d.evidence.get("source") == "heuristic":
        assert repo_id in readings, "the right split is among the readings listed"


# (value, rule, severity or None for the rule's own, reason)
PATHS = [
    ("checkpoints/run-1/final", "local_path_missing", None, "two '/': a path, not a Hub ID"),
    ("saves/llama3-8b/lora/sft", "local_path_missing", None, "LLaMA-Factory's saves/ of an earlier run"),
    ("models/Llama-2-7b", "local_path_missing", Severity.WARNING, "one '/', but models/ is a folder name"),
    ("mistralai/Mistral-7B-v0.1", None, None, "a Hub ID stays a Hub ID"),
]


@pytest.mark.parametrize(("value", "rule", "severity", "reason"), PATHS, ids=[p[3] for p in PATHS])
def test_relative_paths_that_are_not_hub_ids(value, rule, severity, reason):
    d = model_id_diagnosis.diagnose(value)
    assert (d.rule.name if d.rule else None, d.severity) == (rule, severity), reason


def test_a_folder_word_whose_folder_exists_is_an_error(tmp_path):
    (tmp_path / "models").mkdir()
    d = model_id_diagnosis.diagnose("models/Llama-2-7b", base_dir=tmp_path)
    assert (d.rule.name, d.severity) == ("local_path_missing", None)
    (tmp_path / "models" / "Llama-2-7b").mkdir()
    (tmp_path / "models" / "Llama-2-7b" / "config.json").write_text("{}")
    assert model_id_diagnosis.diagnose("models/Llama-2-7b", base_dir=tmp_path).rule is None


def test_search_dirs_find_a_relative_path_and_files_override_the_kind(tmp_path):
    folder = tmp_path / "root" / "mistral_models" / "7B"
    folder.mkdir(parents=True)
    (folder / "params.json").write_text("{}")
    where = {"base_dir": tmp_path / "root" / "configs", "base_dirs": (tmp_path / "root",)}
    assert model_id_diagnosis.diagnose("mistral_models/7B", **where).rule.name == "not_a_model_folder"
    assert model_id_diagnosis.diagnose("mistral_models/7B", files=("params.json",), **where).rule is None
