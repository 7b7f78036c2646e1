"""Tokens never reach output, in any form: raw, stripped, repr, bytes repr, JSON-escaped, URL-quoted.

``HF_TOKEN=$'hf_secret123\\n'`` once came back as ``Illegal header value b'Bearer hf_secret123\\n'``
in the table, the JSON, the JUnit file and the annotations. Here the Hub client raises exactly
that (no network), and every output of the command is searched for every form of the token.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sftgate.gates.frame.escape import GuardedStream
from sftgate.gates.frame.secrets import MASK, Scrubber, forms, secret_values
from tests.conftest import run_cli
from tests.hostile.conftest import assert_no_bug

TOKEN = "hf_secret123\n"
CORE = "hf_secret123"


def every_form(value: str) -> list[str]:
    core = value.strip()
    return [core, value, repr(value)[1:-1], repr(value.encode())[2:-1], json.dumps(value)[1:-1],
            quote(value, safe=""), f"b'Bearer {value}'", repr(f"Bearer {value}".encode())]


@pytest.mark.parametrize("shape", [
    "Illegal header value b'Bearer {t}'", "{t!r}", "https://x.example/?token={q}", '{{"token": {j}}}',
    "Authorization: Bearer {t}", "{t}",
])
def test_scrubber_masks_every_shape(shape: str) -> None:
    text = shape.format(t=TOKEN, q=quote(TOKEN, safe=""), j=json.dumps(TOKEN))
    scrubbed = Scrubber.from_env({"HF_TOKEN": TOKEN}).scrub(text)
    assert CORE not in scrubbed and quote(TOKEN, safe="") not in scrubbed
    assert MASK in scrubbed


@given(st.text(st.characters(codec="utf-8"), min_size=6, max_size=30).filter(lambda s: len(s.strip()) >= 6))
def test_no_form_of_any_token_survives(token: str) -> None:
    scrub = Scrubber([token])
    for form in forms(token):
        assert form not in scrub(f"before {form} after")


def test_hf_shaped_tokens_and_secret_named_variables_are_masked(tmp_path: Path) -> None:
    shaped = "hf_" + "A1b2C3d4" * 5
    env = {"WANDB_API_KEY": "wandb-key-value", "MY_SERVICE_TOKEN": "s3cr3t-value", "TOKENIZERS_PARALLELISM": "false",
           "HF_HOME": str(tmp_path)}
    (tmp_path / "token").write_text("hf_stored_login_token\n")
    scrub = Scrubber.from_env(env)
    text = scrub(f"{shaped} wandb-key-value s3cr3t-value hf_stored_login_token false")
    assert text == f"{MASK} {MASK} {MASK} {MASK} false"
    assert "false" not in secret_values(env)


def test_guarded_stream_scrubs_what_any_writer_prints() -> None:
    raw = io.StringIO()
    stream = GuardedStream(raw, Scrubber([TOKEN]))
    stream.write(f"oops {TOKEN!r} and {TOKEN.encode()!r}\n")
    stream.finish()
    assert CORE not in raw.getvalue()


@pytest.fixture
def leaking_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub fails as it did with a token ending in a newline (and never goes online)."""
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import HfApi

    def model_info(self, repo_id, revision=None, token=None, **kwargs):  # type: ignore[no-untyped-def]
        raise ValueError(f"Illegal header value {('Bearer ' + token).encode()!r} (token {token!r}, "
                         f"url https://huggingface.co/api/models/{repo_id}?t={quote(token, safe='')})")

    monkeypatch.setattr(HfApi, "model_info", model_info)


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_a_token_in_a_hub_error_reaches_no_output(fmt: str, tmp_path: Path, leaking_hub) -> None:  # type: ignore[no-untyped-def]
    env = {"HF_TOKEN": TOKEN, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    junit = tmp_path / "junit.xml"
    result = run_cli("model-id", "mistralai/Mistral-7B-Instruct-v0.3", "--online", "--format", fmt,
                     "--junit-xml", str(junit), env=env)
    assert_no_bug(result)
    assert result.code == 1  # the online check could not run: a finding, not a pass
    outputs = {"stdout": result.out, "stderr": result.err, "junit": junit.read_text("utf-8"),
               "summary": (tmp_path / "summary.md").read_text("utf-8")}
    assert "Illegal header value" in result.out + result.err  # the error itself is reported...
    for name, text in outputs.items():
        for form in every_form(TOKEN):
            assert form not in text, (name, form)  # ...but no form of the token
