"""The Hub's naming rules, implemented here because huggingface_hub's ``validate_repo_id`` accepts more.

Repo IDs (:data:`REPO_ID_REGEX`, :func:`repo_id_problems`, :func:`validate_repo_id`,
:func:`is_valid_repo_id`) and revisions (:func:`revision_problems`, :func:`is_commit`). Pure
string functions: no I/O, no suggestions (those are :mod:`sftgate.gates.config.model_id_diagnosis`).
"""

from __future__ import annotations

import re
from typing import NamedTuple

MAX_SEGMENT = 96

REPO_ID_REGEX = re.compile(
    r"""
    \A                            # the whole string, nothing before
    (?!.*--)                      # no '--' anywhere (it separates org and name in cache folders)
    (?!.*\.\.)                    # no '..' anywhere
    (?:
        (?P<namespace>            # optional namespace: a user or an organisation
            (?![-.])              #   does not start with '-' or '.'
            [A-Za-z0-9._-]{1,96}  #   ASCII letters, digits, '.', '_', '-'; 1 to 96 of them
            (?<![-.])             #   does not end with '-' or '.'
        )
        /                         # exactly one '/' between namespace and name
    )?
    (?P<name>                     # the repo name
        (?![-.])                  #   does not start with '-' or '.'
        [A-Za-z0-9._-]{1,96}      #   ASCII letters, digits, '.', '_', '-'; 1 to 96 of them
        (?<![-.])                 #   does not end with '-' or '.'
    )
    (?<!\.git)                    # no '.git' suffix
    \Z                            # \Z, not $: '$' would let a trailing newline through
    """,
    re.VERBOSE,
)
"""The Hub's repo-ID grammar (model repos), stricter than huggingface_hub's.

Valid: ``gpt2``, ``mistralai/Mistral-7B-Instruct-v0.3``, ``Qwen/Qwen2.5-0.5B-Instruct``,
``01-ai/Yi-1.5-9B``, ``a/b``, ``org_1/name.v2``.

Invalid: ``org/name/extra`` (two slashes), ``org//name``, ``models--org--name`` (``--``),
``org/na..me`` (``..``), ``org/name.git``, ``-org/name``, ``org/name.``, ``org/my model``
(whitespace), ``org/name\\n`` (trailing newline), ``org/Ünïcode``, a segment of 97 characters,
``https://huggingface.co/org/name`` (a URL).
A single segment (``gpt2``) is grammatical; :data:`~sftgate.gates.config.model_id_rules.MISSING_NAMESPACE` is a separate rule.
"""

_SEGMENT_CHAR = re.compile(r"[A-Za-z0-9._-]")
COMMIT_REGEX = re.compile(r"\A[0-9a-f]{40}\Z")
HEX_REVISION_REGEX = re.compile(r"\A[0-9a-fA-F]{7,64}\Z")
_REF_BAD_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def quoted(value: str, limit: int = 120) -> str:
    """``value`` in single quotes for a message, cut to ``limit`` characters."""
    text = value if len(value) <= limit else value[: limit - 1] + "…"
    return f"'{text}'"


class RepoIdProblem(NamedTuple):
    """One way a string breaks the grammar: a stable ``code`` and a human ``detail``."""

    code: str  # empty, whitespace, slashes, characters, length, edge, double_dash, double_dot, git_suffix
    detail: str


class InvalidRepoIdError(ValueError):
    """Raised by :func:`validate_repo_id`; ``problems`` lists every broken rule."""

    def __init__(self, repo_id: str, problems: list[RepoIdProblem]) -> None:
        self.repo_id = repo_id
        self.problems = problems
        super().__init__(f"invalid Hub repo ID {quoted(repo_id)}: " + "; ".join(p.detail for p in problems))


def repo_id_problems(repo_id: str) -> list[RepoIdProblem]:
    """Every Hub naming rule ``repo_id`` breaks; empty when it is grammatical.

    >>> repo_id_problems("mistralai/Mistral-7B-Instruct-v0.3")
    []
    >>> [p.code for p in repo_id_problems("models--org--na..me ")]
    ['whitespace', 'double_dash', 'double_dot']
    """
    if not isinstance(repo_id, str):
        return [RepoIdProblem("characters", f"a {type(repo_id).__name__}, not a string")]
    if repo_id == "":
        return [RepoIdProblem("empty", "is empty")]
    if REPO_ID_REGEX.match(repo_id):
        return []
    problems: list[RepoIdProblem] = []
    if any(ch.isspace() for ch in repo_id):
        problems.append(RepoIdProblem("whitespace", "has whitespace"))
    slashes = repo_id.count("/")
    if slashes > 1:
        problems.append(RepoIdProblem("slashes", f"has {slashes} '/' (a Hub ID is org/name, one '/')"))
    bad = sorted({ch for ch in repo_id if not _SEGMENT_CHAR.match(ch) and ch != "/" and not ch.isspace()})
    if bad:
        shown = " ".join(repr(ch) for ch in bad[:8])
        problems.append(RepoIdProblem("characters", f"has characters outside [A-Za-z0-9._-]: {shown}"))
    segments = repo_id.split("/")
    for seg in segments:
        if seg == "":
            if slashes <= 1:
                problems.append(RepoIdProblem("empty", "has an empty segment around '/'"))
            continue
        if len(seg) > MAX_SEGMENT:
            problems.append(RepoIdProblem("length", f"has a segment of {len(seg)} characters (at most {MAX_SEGMENT})"))
        if seg[0] in "-." or seg[-1] in "-.":
            problems.append(RepoIdProblem("edge", f"has a segment {quoted(seg, 40)} that starts or ends with '-' or '.'"))
    if "--" in repo_id:
        problems.append(RepoIdProblem("double_dash", "has '--'"))
    if ".." in repo_id:
        problems.append(RepoIdProblem("double_dot", "has '..'"))
    if repo_id.endswith(".git"):
        problems.append(RepoIdProblem("git_suffix", "ends with '.git'"))
    if not problems:  # the regex and the explanations disagree: never pass silently
        problems.append(RepoIdProblem("characters", "does not match the Hub's repo-ID grammar"))
    return list(dict.fromkeys(problems))  # without repeats, in order


def validate_repo_id(repo_id: str) -> str:
    """Return ``repo_id`` when it follows the Hub's grammar, else raise :class:`InvalidRepoIdError`."""
    problems = repo_id_problems(repo_id)
    if problems:
        raise InvalidRepoIdError(repo_id, problems)
    return repo_id


def is_valid_repo_id(repo_id: str, *, require_namespace: bool = False) -> bool:
    if not isinstance(repo_id, str) or REPO_ID_REGEX.match(repo_id) is None:
        return False
    return "/" in repo_id or not require_namespace


def revision_problems(revision: str) -> list[str]:
    """Why ``revision`` is not a valid git ref or commit (empty when it is one)."""
    if revision.strip() == "":
        return ["is empty"]
    out = []
    if revision != revision.strip():
        out.append("has surrounding whitespace")
    rev = revision.strip()
    if _REF_BAD_CHARS.search(rev):
        out.append("has a character git refs cannot contain (whitespace, ~ ^ : ? * [ \\)")
    if ".." in rev or "@{" in rev or "//" in rev:
        out.append("has '..', '@{' or '//'")
    if rev.startswith(("-", "/", ".")) or rev.endswith(("/", ".", ".lock")):
        out.append("starts with '-', '/' or '.', or ends with '/', '.' or '.lock'")
    return out


def is_commit(revision: str | None) -> bool:
    return bool(revision) and COMMIT_REGEX.match(revision or "") is not None
