"""The model-ID gate: Hub grammar, suggestions, local folders, revisions, the cache, --online."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sftgate.gates.config import hub_id_grammar, known_models, model_id, model_id_diagnosis, model_id_rules
from sftgate.gates.config.hub_client import FakeHub, HfHubClient, RepoStatus, scrub
from sftgate.gates.frame.core import GateSkipped, InputError, Severity, Stage
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.readers import config as config_mod
from sftgate.gates.readers import document, hf_cache
from tests.conftest import FIXTURES

FIX = FIXTURES / "model_id"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def _empty_hf_cache(tmp_path, monkeypatch):
    """No test reads the real HF cache of the machine it runs on."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def run(refs, **kwargs):
    env = kwargs.pop("env", {"HF_HUB_CACHE": "/nonexistent-sftgate-cache"})
    return list(model_id.check(ids=refs, env=env, **kwargs))


def ref(value, **kwargs):
    return model_id.ModelRef(value=value, location="job.json:model.name", line=1, **kwargs)


# --------------------------------------------------------------------------- one value, offline

# (value, expected rule or None, expected suggestion, confident, reason)
DIAGNOSE_CASES = [
    ("mistralai/Mistral-7B-Instruct-v0.3", None, None, False, "a canonical Hub ID"),
    ("Qwen/Qwen2.5-0.5B-Instruct", None, None, False, "dots in the name are fine"),
    ("01-ai/Yi-1.5-9B", None, None, False, "an org that starts with a digit and has a dash"),
    ("mistralai-Mistral-7B-Instruct", "dash_separated_id", "mistralai/Mistral-7B-Instruct", True, "the postmortem's ID"),
    ("deepseek-ai-DeepSeek-R1", "dash_separated_id", "deepseek-ai/DeepSeek-R1", True, "an org with a dash in it"),
    ("01-ai-Yi-34B", "dash_separated_id", "01-ai/Yi-34B", True, "an org with a dash and a digit"),
    ("meta-llama-Llama-3.1-8B-Instruct", "dash_separated_id", "meta-llama/Llama-3.1-8B-Instruct", True, "meta-llama"),
    ("qwen-Qwen2.5-7B", "dash_separated_id", "Qwen/Qwen2.5-7B", True, "org case comes from the table"),
    ("google-gemma-2b", "dash_separated_id", "google/gemma-2b", True, "lowercase after the dash still splits"),
    ("google-bert-bert-base-uncased", "dash_separated_id", "google-bert/bert-base-uncased", False,
     "two known orgs fit: longest wins, not confident"),
    ("models--mistralai--Mistral-7B-Instruct-v0.3", "dash_separated_id", "mistralai/Mistral-7B-Instruct-v0.3", True,
     "the HF cache folder form"),
    ("mistralai--Mistral-7B", "dash_separated_id", "mistralai/Mistral-7B", True, "the cache separator '--'"),
    ("acme-Model-7B", "dash_separated_id", "acme/Model-7B", False, "unknown org: the uppercase heuristic"),
    ("acme-llama-3-8b-sft", "dash_separated_id", "acme/llama-3-8b-sft", False, "unknown org: a family follows the dash"),
    ("gpt2", "missing_namespace", "openai-community/gpt2", True, "a legacy ID"),
    ("bert-base-uncased", "missing_namespace", "google-bert/bert-base-uncased", True, "a legacy ID with dashes"),
    ("albert-xxlarge-v2", "missing_namespace", "albert/albert-xxlarge-v2", True, "legacy name that starts with its org"),
    ("Mistral-7B-Instruct-v0.3", "missing_namespace", "mistralai/Mistral-7B-Instruct-v0.3", False, "a bare family name"),
    ("mistralai", "missing_namespace", None, False, "an organisation alone"),
    ("my_model", "missing_namespace", None, False, "an unknown bare name"),
    ("https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct", "url_not_id", "Qwen/Qwen2.5-0.5B-Instruct", True, "a model URL"),
    ("https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/tree/main", "url_not_id", "Qwen/Qwen2.5-0.5B-Instruct", True,
     "a URL with a revision"),
    ("huggingface.co/mistralai/Mistral-7B-v0.1", "url_not_id", "mistralai/Mistral-7B-v0.1", True, "no scheme"),
    ("https://hf.co/gpt2", "url_not_id", "openai-community/gpt2", True, "short host, legacy ID"),
    ("hf://mistralai/Mistral-7B-v0.1", "url_not_id", "mistralai/Mistral-7B-v0.1", True, "an fsspec URL"),
    ("https://huggingface.co/datasets/org/data", "url_not_id", None, False, "a dataset URL has no model ID"),
    ("s3://bucket/models/base", "invalid_repo_id", None, False, "another URL scheme"),
    (" mistralai/Mistral-7B-v0.1 ", "invalid_repo_id", "mistralai/Mistral-7B-v0.1", True, "surrounding whitespace"),
    ("mistralai/Mistral-7B-v0.1\n", "invalid_repo_id", "mistralai/Mistral-7B-v0.1", True, "a trailing newline"),
    ("'mistralai/Mistral-7B-v0.1'", "invalid_repo_id", "mistralai/Mistral-7B-v0.1", True, "quotes inside the value"),
    ("mistralai / Mistral-7B-v0.1", "invalid_repo_id", "mistralai/Mistral-7B-v0.1", True, "spaces around the slash"),
    ("mistralai/Mistral-7B-v0.1/", "invalid_repo_id", "mistralai/Mistral-7B-v0.1", True, "a trailing slash"),
    ("mistralai/Mistral-7B-v0.1.git", "invalid_repo_id", "mistralai/Mistral-7B-v0.1", True, "a .git suffix"),
    (" mistralai-Mistral-7B ", "dash_separated_id", "mistralai/Mistral-7B", True, "whitespace and dashes: the dash wins"),
    ("mistralai/Mistral 7B", "invalid_repo_id", None, False, "whitespace inside cannot be fixed safely"),
    ("org/name/extra", "local_path_missing", None, False, "two slashes: a relative path, not a Hub ID"),
    ("org//name", "invalid_repo_id", None, False, "an empty segment"),
    ("org/na..me", "invalid_repo_id", None, False, "'..'"),
    ("org/na--me", "invalid_repo_id", None, False, "'--' in a namespaced ID"),
    ("-org/name", "invalid_repo_id", None, False, "leading dash"),
    ("org/name.", "invalid_repo_id", None, False, "trailing dot"),
    ("org/Ünïcode", "invalid_repo_id", None, False, "non-ASCII letters"),
    ("org/" + "a" * 97, "invalid_repo_id", None, False, "a segment of 97 characters"),
    ("", "invalid_repo_id", None, False, "empty"),
    ("   ", "invalid_repo_id", None, False, "only whitespace"),
    ("./does-not-exist-anywhere", "local_path_missing", None, False, "a missing ./ path"),
    ("/nonexistent/sftgate/model", "local_path_missing", None, False, "a missing absolute path"),
    ("~/nonexistent-sftgate-model", "local_path_missing", None, False, "a missing ~ path"),
    ("/nonexistent/hub/models--Qwen--Qwen2.5-0.5B/snapshots/" + SHA, "local_path_missing", "Qwen/Qwen2.5-0.5B", False,
     "a missing path into an HF cache suggests the Hub ID"),
]


@pytest.mark.parametrize(("value", "rule", "suggestion", "confident", "reason"), DIAGNOSE_CASES,
                         ids=[c[4] for c in DIAGNOSE_CASES])
def test_diagnose(value, rule, suggestion, confident, reason):
    d = model_id_diagnosis.diagnose(value)
    assert (d.rule.name if d.rule else None) == rule, reason
    assert d.suggestion == suggestion, reason
    if suggestion is not None:
        assert d.confident is confident, reason
    if d.suggestion is not None and d.rule is not model_id_rules.LOCAL_PATH_MISSING:
        assert hub_id_grammar.is_valid_repo_id(d.suggestion), "a suggestion is always a valid ID"


def test_url_revision_is_kept():
    d = model_id_diagnosis.diagnose("https://huggingface.co/org/name/tree/refs%2Fpr%2F3")
    assert (d.rule, d.suggestion, d.revision) == (model_id_rules.URL_NOT_ID, "org/name", "refs/pr/3")


# (value, codes, reason)
GRAMMAR_CASES = [
    ("org/name", [], "valid"),
    ("gpt2", [], "a single segment is grammatical"),
    ("org/name/x", ["slashes"], "two slashes"),
    ("org/my model", ["whitespace"], "a space"),
    ("org/na:me", ["characters"], "a colon"),
    ("models--org--name", ["double_dash"], "cache form"),
    ("org/a..b", ["double_dot"], ".."),
    ("org/name.git", ["git_suffix"], ".git"),
    ("org/-name", ["edge"], "leading dash"),
    ("org/" + "x" * 97, ["length"], "97 characters"),
    ("", ["empty"], "empty"),
    ("org/", ["empty"], "empty name"),
]


@pytest.mark.parametrize(("value", "codes", "reason"), GRAMMAR_CASES, ids=[c[2] for c in GRAMMAR_CASES])
def test_repo_id_problems(value, codes, reason):
    assert [p.code for p in hub_id_grammar.repo_id_problems(value)] == codes, reason


def test_validate_repo_id_raises_a_value_error():
    assert hub_id_grammar.validate_repo_id("org/name") == "org/name"
    with pytest.raises(ValueError) as info:
        hub_id_grammar.validate_repo_id("org/na..me")
    assert isinstance(info.value, hub_id_grammar.InvalidRepoIdError)
    assert [p.code for p in info.value.problems] == ["double_dot"]


# --------------------------------------------------------------------------- hypothesis properties

_MID = string.ascii_letters + string.digits + "._-"
_EDGE = string.ascii_letters + string.digits + "_"


@st.composite
def segments(draw):
    """A segment built from the Hub grammar: 1-96 chars, no --/.., no edge -/., no .git suffix."""
    length = draw(st.integers(1, 96))
    if length == 1:
        seg = draw(st.sampled_from(_EDGE))
    else:
        middle = draw(st.text(alphabet=_MID, min_size=length - 2, max_size=length - 2))
        seg = draw(st.sampled_from(_EDGE)) + middle + draw(st.sampled_from(_EDGE))
    assume("--" not in seg and ".." not in seg and not seg.endswith(".git"))
    return seg


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_string_never_raises(text):
    findings = run([ref(text)], release=True)
    assert all(f.rule in {r.name for r in model_id.RULES} for f in findings)
    hub_id_grammar.repo_id_problems(text)


@settings(max_examples=300, deadline=None)
@given(segments(), segments())
def test_anything_built_from_the_grammar_passes(namespace, name):
    assume(namespace.lower() not in ("huggingface.co", "hf.co", "www.huggingface.co"))
    repo_id = f"{namespace}/{name}"
    assert hub_id_grammar.repo_id_problems(repo_id) == []
    assert run([ref(repo_id)]) == []


@settings(max_examples=200, deadline=None)
@given(segments())
def test_a_single_grammatical_segment_is_never_invalid(name):
    assume(not Path(name).exists())
    findings = run([ref(name)])
    assert {f.rule for f in findings} <= {"missing_namespace", "dash_separated_id"}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(known_models.KNOWN_ORGS), segments())
def test_known_org_with_dash_is_flagged_with_the_original(org, name):
    dashed = f"{org}-{name}"
    assume(known_models.canonical_id(dashed) is None)
    assume(len(known_models.known_org_splits(dashed)) == 1)
    assume(not Path(dashed).exists())
    findings = run([ref(dashed)])
    assert [f.rule for f in findings] == ["dash_separated_id"]
    assert findings[0].suggestion == f"{org}/{name}"


# --------------------------------------------------------------------------- the local HF cache


def make_cache(root: Path, *repo_ids: str) -> Path:
    for rid in repo_ids:
        (root / hf_cache.repo_id_to_folder(rid) / "snapshots" / SHA).mkdir(parents=True)
    (root / "datasets--org--data").mkdir(parents=True, exist_ok=True)
    return root


def test_cache_resolves_an_unknown_org(tmp_path):
    cache = make_cache(tmp_path / "hub", "my-team/my-model", "acme/Other")
    findings = run([ref("my-team-my-model")], env={"HF_HUB_CACHE": str(cache)})
    assert [(f.rule, f.suggestion) for f in findings] == [("dash_separated_id", "my-team/my-model")]
    assert findings[0].evidence["source"] == "hf_cache"


def test_cache_location_follows_hf_home(tmp_path):
    make_cache(tmp_path / "home" / "hub", "my-team/my-model")
    assert hf_cache.cache_dir({"HF_HOME": str(tmp_path / "home")}) == tmp_path / "home" / "hub"
    assert hf_cache.cached_model_ids(env={"HF_HOME": str(tmp_path / "home")}) == ("my-team/my-model",)
    assert hf_cache.cache_dir({"HF_HUB_CACHE": "/x", "HF_HOME": "/y"}) == Path("/x")
    assert hf_cache.cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/huggingface/hub")


def test_cache_gives_the_namespace_of_a_bare_name(tmp_path):
    cache = make_cache(tmp_path / "hub", "acme/support-bot-v2")
    findings = run([ref("support-bot-v2")], env={"HF_HUB_CACHE": str(cache)})
    assert [(f.rule, f.suggestion) for f in findings] == [("missing_namespace", "acme/support-bot-v2")]


@pytest.mark.parametrize(("folder", "expected"), [
    ("models--org--name", "org/name"),
    ("models--gpt2", "gpt2"),
    ("datasets--org--name", None),
    ("models--org--na--me", None),
    ("random", None),
])
def test_folder_to_repo_id(folder, expected):
    assert hf_cache.folder_to_repo_id(folder) == expected


# --------------------------------------------------------------------------- local folders


def test_local_folders(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    empty = tmp_path / "empty"
    empty.mkdir()
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "tokenizer.json").write_text("{}")
    a_file = tmp_path / "weights.bin"
    a_file.write_text("x")
    cached = tmp_path / "models--org--name"
    (cached / "snapshots").mkdir(parents=True)
    refs = [
        model_id.ModelRef(str(model), "c.yaml:a"),
        model_id.ModelRef("./model", "c.yaml:b", base_dir=tmp_path),
        model_id.ModelRef("model", "c.yaml:c", base_dir=tmp_path),  # a relative path that exists
        model_id.ModelRef(str(empty), "c.yaml:d"),
        model_id.ModelRef(str(adapter), "c.yaml:e"),
        model_id.ModelRef(str(adapter), "c.yaml:f", kind="adapter"),
        model_id.ModelRef(str(tok), "c.yaml:g", kind="tokenizer"),
        model_id.ModelRef(str(a_file), "c.yaml:h"),
        model_id.ModelRef(str(cached), "c.yaml:i"),
        model_id.ModelRef("./missing", "c.yaml:j", base_dir=tmp_path),
    ]
    got = {f.location.split(":")[1]: (f.rule, f.severity, f.suggestion) for f in run(refs, release=True)}
    assert got == {
        "d": ("not_a_model_folder", Severity.ERROR, None),
        "e": ("not_a_model_folder", Severity.WARNING, None),
        "h": ("not_a_model_folder", Severity.ERROR, None),
        "i": ("not_a_model_folder", Severity.ERROR, "org/name"),
        "j": ("local_path_missing", Severity.ERROR, None),
    }, "local folders need no revision, even in release mode"


def test_publish_target_is_never_a_path():
    findings = run([model_id.ModelRef("./out", "c:release.repo_id", kind="publish"),
                    model_id.ModelRef("just-a-name", "c:x", kind="publish"),
                    model_id.ModelRef("acme/bot", "c:y", kind="publish")], release=True)
    assert [(f.location, f.rule) for f in findings] == [("c:release.repo_id", "invalid_repo_id"),
                                                        ("c:x", "missing_namespace")]


# --------------------------------------------------------------------------- revisions

# (revision, release, expected rules, suggestion, reason)
REVISION_CASES = [
    (None, False, [], None, "no revision outside release mode is fine"),
    ("main", False, [], None, "a branch outside release mode is fine"),
    (SHA, True, [], None, "a 40-hex commit pins"),
    (None, True, ["unpinned_revision"], None, "release mode needs a revision"),
    ("main", True, ["unpinned_revision"], None, "a branch is not pinned"),
    ("v1.0", True, ["unpinned_revision"], None, "a tag is not pinned"),
    (SHA[:7], True, ["unpinned_revision"], None, "a short commit is not pinned"),
    (SHA.upper(), True, ["unpinned_revision"], SHA, "an upper-case commit gets the lower-case form"),
    ("main ", False, ["invalid_revision"], "main", "whitespace is stripped"),
    ("ma in", False, ["invalid_revision"], None, "a space inside a ref"),
    ("a..b", False, ["invalid_revision"], None, "'..' in a ref"),
    ("", False, ["invalid_revision"], None, "an empty revision"),
]


@pytest.mark.parametrize(("revision", "release", "rules", "suggestion", "reason"), REVISION_CASES,
                         ids=[c[4] for c in REVISION_CASES])
def test_revisions(revision, release, rules, suggestion, reason):
    refs = [ref("Qwen/Qwen2.5-0.5B-Instruct", revision=revision, revision_location="job.json:model.revision")]
    findings = run(refs, release=release)
    assert [f.rule for f in findings] == rules, reason
    if findings:
        assert findings[0].suggestion == suggestion, reason


def test_url_revision_counts_in_release_mode():
    findings = run([ref(f"https://huggingface.co/org/name/tree/{SHA}")], release=True)
    assert [f.rule for f in findings] == ["url_not_id"], "the URL's commit pins the revision"


# --------------------------------------------------------------------------- --online with a fake Hub


@pytest.fixture
def hub():
    return FakeHub.from_file(FIX / "hub.json")


@pytest.mark.parametrize(
    ("text", "reason"),
    [(None, "a missing file"), ("{not json", "not JSON"), ("[]", "JSON but not an object")],
)
def test_a_bad_fake_hub_file_is_an_input_error(tmp_path, text, reason):
    path = tmp_path / "hub.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(InputError) as err:
        FakeHub.from_file(path)
    assert err.value.exit_code == 2, reason


# (value, revision, release, expected rules with severities, reason)
ONLINE_CASES = [
    ("Qwen/Qwen2.5-0.5B-Instruct", None, False, [], "exists"),
    ("Qwen/Qwen2.5-0.5B-Instruct", "v1.0", False, [], "the tag exists"),
    ("acme/model-that-does-not-exist", None, False, [("not_found", "error")], "missing repo"),
    ("meta-llama/Llama-3.1-8B-Instruct", None, False, [("gated", "error")], "gated without access"),
    ("google/gemma-2-2b-it", None, False, [("gated", "warning")], "gated with access"),
    ("Qwen/Qwen2.5-0.5B-Instruct", "v9.9", False, [("revision_not_found", "error")], "missing revision"),
    ("Qwen/Qwen2.5-0.5B-Instruct", "main", True, [("unpinned_revision", "error")], "branch in release mode"),
    ("acme/flaky", None, False, [("online_check_skipped", "error")], "the Hub did not answer"),
    ("mistralai-Mistral-7B-Instruct-v0.3", None, False, [("dash_separated_id", "error")],
     "the suggestion is looked up, not reported missing"),
]


@pytest.mark.parametrize(("value", "revision", "release", "expected", "reason"), ONLINE_CASES,
                         ids=[c[4] for c in ONLINE_CASES])
def test_online(hub, value, revision, release, expected, reason):
    findings = run([ref(value, revision=revision)], online=True, client=hub, release=release)
    assert [(f.rule, f.severity.value) for f in findings] == expected, reason


def test_online_suggests_the_commit_a_branch_points_to(hub):
    findings = run([ref("Qwen/Qwen2.5-0.5B-Instruct", revision="main")], online=True, client=hub, release=True)
    assert findings[0].suggestion == SHA
    assert hub.calls == [("Qwen/Qwen2.5-0.5B-Instruct", "main")]


def test_online_respects_hf_hub_offline():
    findings = run([ref("Qwen/Qwen2.5-0.5B-Instruct")], online=True, env={"HF_HUB_OFFLINE": "1"})
    assert [(f.rule, f.severity) for f in findings] == [("online_check_skipped", Severity.WARNING)]


class _FakeApi:
    """Stands in for huggingface_hub.HfApi: raises the errors the real one raises."""

    def __init__(self, outcome):
        self.outcome = outcome
        self.tokens = []

    def model_info(self, repo_id, *, revision=None, token=None):
        self.tokens.append(token)
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    def auth_check(self, repo_id, *, token=None):
        if getattr(self.outcome, "denied", False):
            from huggingface_hub.errors import GatedRepoError

            raise GatedRepoError("gated", response=_response())


def _response():
    import httpx

    return httpx.Response(404, request=httpx.Request("GET", "https://huggingface.co/api/models/x"))


class _Info:
    def __init__(self, gated=False, denied=False, sha=SHA):
        self.gated, self.denied, self.sha, self.private = gated, denied, sha, False


def test_hf_client_maps_huggingface_hub_errors():
    pytest.importorskip("huggingface_hub")
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    env = {"HF_TOKEN": "hf_secret_token_value"}
    cases = [
        (_Info(), RepoStatus(exists=True, sha=SHA)),
        (_Info(gated="manual", denied=True), RepoStatus(exists=True, gated=True, access=False, sha=SHA)),
        (RepositoryNotFoundError("nope", response=_response()), RepoStatus(exists=False)),
        (RevisionNotFoundError("nope", response=_response()), RepoStatus(exists=True, revision_exists=False)),
    ]
    for outcome, expected in cases:
        api = _FakeApi(outcome)
        assert HfHubClient(env, api=api).lookup("org/name") == expected
        assert api.tokens == ["hf_secret_token_value"]


def test_hf_client_network_error_never_shows_the_token():
    from sftgate.gates.config.hub_client import HubUnavailable

    env = {"HF_TOKEN": "hf_secret_token_value"}
    api = _FakeApi(ConnectionError("failed with Authorization: Bearer hf_secret_token_value"))
    with pytest.raises(HubUnavailable) as info:
        HfHubClient(env, api=api).lookup("org/name")
    assert "hf_secret_token_value" not in str(info.value)
    assert scrub("x hf_secret_token_value y", env) == "x *** y"


# --------------------------------------------------------------------------- configs and fixtures


def test_from_config_reads_model_release_and_publish_target():
    cfg = config_mod.load(FIX / "unpinned_revision.yaml")
    kwargs = model_id.from_config(cfg)
    assert kwargs is not None and kwargs["release"] is True
    refs = kwargs["ids"]
    assert [(r.value, r.kind, r.revision) for r in refs] == [
        ("Qwen/Qwen2.5-0.5B-Instruct", "model", "main"), ("acme/ticket-triage", "publish", None)]
    assert refs[0].location.endswith("unpinned_revision.yaml:model.id") and refs[0].line == 4
    assert refs[0].revision_location.endswith(":model.revision") and refs[0].revision_line == 5


def test_a_document_without_model_fields_is_a_skip(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"epochs": 3}')
    result = run_gate("model-id", Stage.CONFIG, model_id.check, **model_id.from_document(document.load(path)))
    assert result.status.value == "skip"
    with pytest.raises(GateSkipped):
        list(model_id.check(ids=[]))


# (fixture, check kwargs, expected rule, reason): every rule has a fixture that triggers it
RULE_FIXTURES = [
    ("invalid_repo_id.yaml", {}, "invalid_repo_id", "whitespace in the name"),
    ("missing_namespace.yaml", {}, "missing_namespace", "gpt2"),
    ("dash_separated_id.json", {}, "dash_separated_id", "the postmortem's job.json"),
    ("dash_separated_id.yaml", {}, "dash_separated_id", "axolotl base_model"),
    ("url_not_id.yaml", {}, "url_not_id", "model.name is a URL"),
    ("local_path_missing.yaml", {}, "local_path_missing", "./checkpoints/does-not-exist"),
    ("unpinned_revision.yaml", {}, "unpinned_revision", "release mode, branch main"),
    ("not_found.yaml", {"online": True}, "not_found", "fake Hub has no such repo"),
    ("gated.yaml", {"online": True}, "gated", "fake Hub: gated, no access"),
    ("not_a_model_folder.yaml", {}, "not_a_model_folder", "a folder without config.json"),
    ("invalid_revision.yaml", {}, "invalid_revision", "'main ' with a space"),
    ("revision_not_found.yaml", {"online": True}, "revision_not_found", "fake Hub has no v9.9"),
    ("online_check_skipped.yaml", {"online": True, "env": {"HF_HUB_OFFLINE": "1"}}, "online_check_skipped",
     "HF_HUB_OFFLINE=1"),
]


def _fixture_kwargs(name):
    doc = document.load(FIX / name)
    if config_mod.is_sftgate_config(doc):
        return model_id.from_config(config_mod.Config(doc))
    return model_id.from_document(doc)


@pytest.mark.parametrize(("name", "extra", "rule", "reason"), RULE_FIXTURES, ids=[c[0] for c in RULE_FIXTURES])
def test_rule_fixture_triggers_its_rule(hub, name, extra, rule, reason):
    kwargs = {**_fixture_kwargs(name), **extra}
    if kwargs.get("online") and "env" not in extra:
        kwargs["client"] = hub
    kwargs.setdefault("env", {"HF_HUB_CACHE": "/nonexistent-sftgate-cache"})
    findings = list(model_id.check(**kwargs))
    assert rule in [f.rule for f in findings], reason
    assert all(f.location.startswith(str(FIX / name)) for f in findings), "located FILE:key.path"


def test_every_rule_has_a_fixture():
    assert {r.name for r in model_id.RULES} == {c[2] for c in RULE_FIXTURES}
    codes = [r.code for r in model_id.RULES]
    assert len(set(codes)) == len(codes) and all(c.startswith("MID") and len(c) == 6 for c in codes)


@pytest.mark.parametrize("name", ["clean.yaml", "clean.json"])
def test_clean_fixtures_trigger_nothing(hub, name):
    kwargs = _fixture_kwargs(name)
    assert kwargs["ids"], "the clean fixture has model-ID fields"
    assert list(model_id.check(**kwargs, release=True, env={"HF_HUB_CACHE": "/nonexistent"})) == []
