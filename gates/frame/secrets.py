"""Secrets sftgate knows of, and scrubbing every form of them out of what it writes.

A token reaches output in more shapes than its raw value: ``HF_TOKEN=$'hf_x\\n'`` came back as
``Illegal header value b'Bearer hf_x\\n'`` (a repr), a URL carries it percent-encoded, JSON
escapes it. :class:`Scrubber` knows the secrets of an environment (``HF_TOKEN``,
``HUGGING_FACE_HUB_TOKEN``, the token file huggingface_hub keeps, and any variable named like a
secret: ``*_TOKEN``, ``*_SECRET``, ``*_PASSWORD``, ``*_API_KEY``...) and replaces each form of
each (raw, stripped, ``repr``, ``bytes`` repr, JSON-escaped, URL-quoted) and anything shaped like a
Hugging Face token (``hf_`` and 30 or more letters and digits) with ``***``.

The CLI scrubs at the one place output is written: its stdout and stderr
(:class:`sftgate.gates.frame.escape.GuardedStream`), the JUnit file and the step summary.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

MASK = "***"
TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_API_TOKEN")
_SECRET_NAME = re.compile(r"(?:^|_)(?:TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY|AUTH)$", re.I)
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{30,}")
MIN_SECRET = 6  # shorter values ("true", "1") are not secrets, and masking them would mangle output
MAX_TOKEN_FILE = 4096


def secret_values(env: Mapping[str, str]) -> list[str]:
    """The secret values of ``env``: the Hub token variables, secret-named variables, the token file."""
    values = [env[k] for k in TOKEN_VARS if env.get(k)]
    values += [v for k, v in env.items() if v and k not in TOKEN_VARS and _SECRET_NAME.search(k)]
    stored = _stored_token(env)
    if stored:
        values.append(stored)
    return values


def _stored_token(env: Mapping[str, str]) -> str | None:
    """The token huggingface_hub saved at login (``HF_TOKEN_PATH``, else ``$HF_HOME/token``)."""
    path = env.get("HF_TOKEN_PATH")
    if not path:
        home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or os.path.join(
            env.get("HOME") or os.path.expanduser("~"), ".cache"), "huggingface")
        path = os.path.join(home, "token")
    try:
        p = Path(path)
        if not p.is_file() or p.stat().st_size > MAX_TOKEN_FILE:
            return None
        return p.read_text("utf-8", errors="replace").strip() or None
    except (OSError, ValueError):
        return None


def forms(value: str) -> set[str]:
    """Every form in which ``value`` may show up in text: raw, stripped, repr, escaped, quoted."""
    from urllib.parse import quote, quote_plus

    out: set[str] = set()
    for v in {value, value.strip()}:
        if not v:
            continue
        out |= {v, repr(v)[1:-1], json.dumps(v)[1:-1], json.dumps(v, ensure_ascii=False)[1:-1],
                quote(v, safe=""), quote_plus(v), v.encode("unicode_escape").decode("ascii")}
        raw = v.encode("utf-8", "surrogatepass")
        out.add(repr(raw)[2:-1])
        out.add(raw.decode("latin-1"))
    return {f for f in out if len(f) >= MIN_SECRET}


class Scrubber:
    """``scrub(text)``: ``text`` with every form of every known secret, and HF-token shapes, masked."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        found: set[str] = set()
        for value in values:
            if len(value.strip()) >= MIN_SECRET:
                found |= forms(value)
        # longest first, so that a form is masked whole before a shorter one inside it
        self._forms = sorted(found, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(f) for f in self._forms)) if self._forms else None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Scrubber:
        return cls(secret_values(env))

    def __call__(self, text: str) -> str:
        return self.scrub(text)

    def scrub(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        if "hf_" in text:
            text = _HF_TOKEN.sub(MASK, text)
        return text
