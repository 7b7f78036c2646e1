"""Gate ``model-id``: every model ID is a valid Hub ID or an existing local model folder.

The failure it stops: a config says ``mistralai-Mistral-7B-Instruct`` (dashes) where it meant
``mistralai/Mistral-7B-Instruct``; huggingface_hub's own ``validate_repo_id`` accepts it, and the
job dies at load time, after the GPU was allocated. The Hub's naming rules are implemented here
(not delegated to huggingface_hub, which accepts more than the Hub does), with a suggestion for
every mistake that can be corrected offline: a table of well-known organisations, legacy IDs,
the local HF cache, URLs and cache-folder names.

Entry points: :func:`check` (the gate), :func:`diagnose` (one value, no I/O beyond the local
file system), :func:`repo_id_problems` / :func:`validate_repo_id` (the grammar alone),
:func:`from_config` (an sftgate config) and :func:`from_document` (any JSON/YAML config).
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote

from sftgate.gates.config import known_models, model_id_fields
from sftgate.gates.frame.core import Finding, GateSkipped, Rule, Severity
from sftgate.gates.readers import hf_cache

if TYPE_CHECKING:  # sftgate.gates.readers.document imports yaml; model-id on the command line does not need it
    from sftgate.gates.readers.document import Document

GATE = "model-id"

# --------------------------------------------------------------------------- rules

INVALID_REPO_ID = Rule(
    "MID001", "invalid_repo_id", Severity.ERROR, GATE,
    "the model ID breaks the Hub's naming rules",
    "A Hub ID is `org/name`: letters, digits, `.`, `_`, `-`, at most 96 per segment, no `--` or `..`, "
    "no `.git` suffix, no leading or trailing `-` or `.`, no whitespace, at most one `/`. Anything else "
    "fails at load time with HFValidationError or 'is not a valid model identifier', after the job "
    "was scheduled.",
    "Use the suggestion when there is one (surrounding whitespace, quotes, a trailing `/` or `.git` "
    "are stripped); otherwise copy the ID from the model page. `sftgate fix-model-ids FILE --write` "
    "applies the safe fixes.",
    "model:\n  id: ' mistralai/Mistral-7B-Instruct-v0.3'   # -> mistralai/Mistral-7B-Instruct-v0.3",
)
MISSING_NAMESPACE = Rule(
    "MID002", "missing_namespace", Severity.WARNING, GATE,
    "a Hub ID without an organisation (`gpt2` instead of `openai-community/gpt2`)",
    "Legacy IDs without a namespace only load through Hub redirects, and a bare name like "
    "`Mistral-7B-Instruct-v0.3` does not load at all. A publish target without a namespace goes to "
    "whoever's token runs the job.",
    "Write the full `org/name`; the suggestion gives the canonical ID when it is known (legacy table, "
    "local HF cache) or a likely one (model family).",
    "model:\n  id: gpt2   # -> openai-community/gpt2",
)
DASH_SEPARATED_ID = Rule(
    "MID003", "dash_separated_id", Severity.ERROR, GATE,
    "`org-name` (or the cache folder `models--org--name`) where `org/name` was meant",
    "`mistralai-Mistral-7B-Instruct` passes huggingface_hub's validate_repo_id, so nothing catches it "
    "before the job dies at load time with 'is not a local folder and is not a valid model "
    "identifier'. The organisation is recognised from a table of well-known organisations, the local "
    "HF cache and the cache-folder form.",
    "Use the slash form in the suggestion; `sftgate fix-model-ids FILE --write` rewrites it when the "
    "organisation is certain.",
    '{"model": {"name": "mistralai-Mistral-7B-Instruct"}}   # -> mistralai/Mistral-7B-Instruct',
)
URL_NOT_ID = Rule(
    "MID004", "url_not_id", Severity.ERROR, GATE,
    "a Hub URL where a model ID was expected",
    "from_pretrained takes `org/name`, not `https://huggingface.co/org/name`; a URL is not a local "
    "folder either, so loading fails. A `/tree/REV` in the URL is a revision that belongs in its own key.",
    "Use the ID in the suggestion, and put the URL's revision (if any) in `model.revision`.",
    "model:\n  id: https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/tree/main   # -> Qwen/Qwen2.5-0.5B-Instruct",
)
LOCAL_PATH_MISSING = Rule(
    "MID005", "local_path_missing", Severity.ERROR, GATE,
    "a local model path (`./x`, `../x`, `/x`, `~/x`) that does not exist",
    "A path that does not exist is then tried as a Hub ID, which fails with a confusing "
    "HFValidationError or 'not a valid model identifier' instead of 'no such folder'.",
    "Fix the path (relative paths are tried from the config's folder and from the current folder), "
    "or build the model first. A path into the HF cache suggests the Hub ID it caches.",
    "model:\n  id: ./checkpoints/base   # no such folder",
)
UNPINNED_REVISION = Rule(
    "MID006", "unpinned_revision", Severity.ERROR, GATE,
    "release mode: the revision is a branch, a tag or missing instead of a 40-hex commit",
    "A branch moves: the model trained today and the one loaded tomorrow can differ, and a release "
    "must be reproducible. Only a full commit hash pins the weights.",
    "Set `model.revision` to the commit (`--online` suggests the commit the branch points to now; "
    "the model page's 'Files and versions' tab lists them).",
    "model:\n  id: Qwen/Qwen2.5-0.5B-Instruct\n  revision: main   # -> a 40-hex commit",
)
NOT_FOUND = Rule(
    "MID007", "not_found", Severity.ERROR, GATE,
    "online: the repo does not exist on the Hub (or is private to this token)",
    "The ID is well formed but names nothing the job can download; it would fail at load time.",
    "Check the spelling on the Hub; for a private repo set HF_TOKEN to a token that can read it.",
    "sftgate model-id mistralai/Mistral-7B-Instruct-v9 --online",
)
GATED = Rule(
    "MID008", "gated", Severity.ERROR, GATE,
    "online: the repo is gated (an error when this token has no access, a warning when it has)",
    "A gated repo (Llama, Gemma, ...) exists but downloads only for accounts that accepted its "
    "conditions; the training machine needs such a token too.",
    "Accept the conditions on the model page and set HF_TOKEN on every machine that loads it.",
    "sftgate model-id meta-llama/Llama-3.1-8B-Instruct --online",
)
NOT_A_MODEL_FOLDER = Rule(
    "MID009", "not_a_model_folder", Severity.ERROR, GATE,
    "a local path that exists but is not a model folder (no config.json; a file; an adapter)",
    "transformers needs config.json in a model folder (tokenizer files in a tokenizer folder, "
    "adapter_config.json in an adapter folder); without it loading fails after the job started. "
    "A PEFT adapter folder only loads through AutoPeftModel classes.",
    "Point at the folder that holds config.json (for an HF cache folder, use the Hub ID or a "
    "`snapshots/<commit>` folder).",
    "model:\n  id: ./checkpoints/run-1   # has only optimizer.pt",
)
INVALID_REVISION = Rule(
    "MID010", "invalid_revision", Severity.ERROR, GATE,
    "the revision is not a valid git ref or commit (whitespace, `..`, `~^:?*[\\`, ...)",
    "transformers fails with 'is not a valid git identifier (branch name, tag name or commit id)'.",
    "Use a branch, a tag or a commit hash; the suggestion strips surrounding whitespace.",
    "model:\n  revision: 'main '   # -> main",
)
REVISION_NOT_FOUND = Rule(
    "MID011", "revision_not_found", Severity.ERROR, GATE,
    "online: the revision does not exist in the repo",
    "A typo in a branch, a deleted tag or a commit of another repo fails at load time with 'is not "
    "a valid git identifier'.",
    "Pick a revision from the model page's 'Files and versions' tab.",
    "sftgate model-id Qwen/Qwen2.5-0.5B-Instruct --revision v9 --online",
)
ONLINE_CHECK_SKIPPED = Rule(
    "MID012", "online_check_skipped", Severity.WARNING, GATE,
    "--online was asked for, but the Hub could not be asked (HF_HUB_OFFLINE, no huggingface_hub, network)",
    "A skip is never a pass: existence, gated access and revisions were not verified. "
    "HF_HUB_OFFLINE=1 is respected (a warning); a network failure or a missing huggingface_hub is an error.",
    "Unset HF_HUB_OFFLINE, install huggingface_hub (`pip install 'sftgate[train]'`), or check the network.",
    "HF_HUB_OFFLINE=1 sftgate model-id Qwen/Qwen2.5-0.5B-Instruct --online",
)

RULES: tuple[Rule, ...] = (
    INVALID_REPO_ID, MISSING_NAMESPACE, DASH_SEPARATED_ID, URL_NOT_ID, LOCAL_PATH_MISSING,
    UNPINNED_REVISION, NOT_FOUND, GATED, NOT_A_MODEL_FOLDER, INVALID_REVISION, REVISION_NOT_FOUND,
    ONLINE_CHECK_SKIPPED,
)

# --------------------------------------------------------------------------- the Hub grammar

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
A single segment (``gpt2``) is grammatical; :data:`MISSING_NAMESPACE` is a separate rule.
"""

_SEGMENT_CHAR = re.compile(r"[A-Za-z0-9._-]")
_COMMIT = re.compile(r"\A[0-9a-f]{40}\Z")
_HEX = re.compile(r"\A[0-9a-fA-F]{7,64}\Z")
_SCHEME = re.compile(r"\A[A-Za-z][A-Za-z0-9+.-]*://")
_HUB_URL = re.compile(
    r"""
    \A
    (?:
        (?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co)/   # a Hub web URL, scheme optional
      | hf://                                               # an fsspec URL (HfFileSystem)
    )
    (?P<path>[^?#]*)                                        # the repo path (query and fragment dropped)
    """,
    re.VERBOSE | re.IGNORECASE,
)
_WINDOWS_DRIVE = re.compile(r"\A[A-Za-z]:[\\/]")
_REF_BAD_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_URL_REV_KINDS = ("tree", "blob", "resolve", "commit", "raw")


class RepoIdProblem(NamedTuple):
    """One way a string breaks the grammar: a stable ``code`` and a human ``detail``."""

    code: str  # empty, whitespace, slashes, characters, length, edge, double_dash, double_dot, git_suffix
    detail: str


class InvalidRepoIdError(ValueError):
    """Raised by :func:`validate_repo_id`; ``problems`` lists every broken rule."""

    def __init__(self, repo_id: str, problems: list[RepoIdProblem]) -> None:
        self.repo_id = repo_id
        self.problems = problems
        super().__init__(f"invalid Hub repo ID {_q(repo_id)}: " + "; ".join(p.detail for p in problems))


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
            problems.append(RepoIdProblem("edge", f"has a segment {_q(seg, 40)} that starts or ends with '-' or '.'"))
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
    return bool(revision) and _COMMIT.match(revision or "") is not None


# --------------------------------------------------------------------------- one value


@dataclass(frozen=True)
class ModelRef:
    """One model ID to check and where it came from.

    ``location`` is ``FILE:key.path`` (or a label such as ``ID`` for the command line) and
    ``line`` its line when known; the revision has its own location. ``kind`` is ``model``,
    ``tokenizer``, ``adapter`` or ``publish`` (a repo to push to: never a local path, never
    pinned). Relative local paths are tried from ``base_dir`` (the config's folder) and then
    from the current folder.
    """

    value: str
    location: str
    line: int | None = None
    revision: str | None = None
    revision_location: str | None = None
    revision_line: int | None = None
    kind: str = "model"
    base_dir: Path | None = None


@dataclass(frozen=True)
class Diagnosis:
    """What :func:`diagnose` concluded about one value.

    ``rule`` is None when the value is fine as it is. ``form`` is ``hub``, ``local``, ``url`` or
    ``invalid``. ``repo_id`` is the Hub ID to look up online (the value, or a suggestion).
    ``confident`` marks a suggestion ``fix-model-ids`` may apply without a human.
    """

    rule: Rule | None
    message: str = ""
    suggestion: str | None = None
    confident: bool = False
    form: str = "hub"
    repo_id: str | None = None
    revision: str | None = None
    severity: Severity | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def _q(value: str, limit: int = 120) -> str:
    text = value if len(value) <= limit else value[: limit - 1] + "…"
    return f"'{text}'"


def looks_local(value: str) -> bool:
    """``./x``, ``../x``, ``/x``, ``~/x``, ``.``, a Windows drive or a backslash: a path, not an ID."""
    return (
        value.startswith(("./", "../", "/", "~", ".\\", "..\\"))
        or value in (".", "..")
        or _WINDOWS_DRIVE.match(value) is not None
        or "\\" in value
    )


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _candidates(value: str, base_dir: Path | None) -> list[Path]:
    path = Path(os.path.expanduser(value))  # never raises, unlike Path.expanduser for '~nobody'
    if path.is_absolute():
        return [path]
    out = [base_dir / path] if base_dir is not None else []
    if path not in out:
        out.append(path)
    return out


def _safe_clean(value: str) -> tuple[str, list[str]]:
    """Strip what can safely be stripped; return the result and what was stripped."""
    steps: list[str] = []
    text = value
    if text.strip() != text:
        text = text.strip()
        steps.append("surrounding whitespace")
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"`":
        text = text[1:-1].strip()
        steps.append("surrounding quotes")
    if re.search(r"\s/|/\s", text) and not any(ch.isspace() for ch in re.sub(r"\s*/\s*", "/", text)):
        text = re.sub(r"\s*/\s*", "/", text)
        steps.append("whitespace around '/'")
    if text and not looks_local(text) and not _SCHEME.match(text) and not _HUB_URL.match(text):
        if text.endswith("/") and text.rstrip("/"):
            text = text.rstrip("/")
            steps.append("a trailing '/'")
        if text.endswith(".git") and len(text) > 4:
            text = text[:-4]
            steps.append("the '.git' suffix")
    return text, steps


def diagnose(
    value: str,
    *,
    kind: str = "model",
    base_dir: Path | None = None,
    cached_ids: Collection[str] = (),
) -> Diagnosis:
    """Judge one model-ID value offline (the file system and the given cache list only).

    Never raises for any string: every outcome is a :class:`Diagnosis`.
    """
    if not isinstance(value, str):
        return Diagnosis(INVALID_REPO_ID, f"model ID is a {type(value).__name__}, not a string", form="invalid")
    cleaned, steps = _safe_clean(value)
    if steps:
        return _diagnose_cleaned(value, cleaned, steps, kind, base_dir, cached_ids)
    return _diagnose(value, kind, base_dir, cached_ids)


def _diagnose_cleaned(value: str, cleaned: str, steps: list[str], kind: str, base_dir: Path | None,
                      cached_ids: Collection[str]) -> Diagnosis:
    what = ", ".join(steps)
    if cleaned == "":
        return Diagnosis(INVALID_REPO_ID, f"model ID {_q(value)} is empty once {what} is stripped",
                         form="invalid", evidence={"stripped": steps})
    inner = _diagnose(cleaned, kind, base_dir, cached_ids)
    evidence = {**inner.evidence, "stripped": steps}
    if inner.rule in (URL_NOT_ID, DASH_SEPARATED_ID):
        return replace(inner, message=f"{inner.message} (and {what})", evidence=evidence)
    if inner.rule is None or inner.suggestion is not None:
        suggestion = inner.suggestion if inner.suggestion is not None else cleaned
        confident = inner.confident if inner.suggestion is not None else True
    elif inner.rule in (MISSING_NAMESPACE, LOCAL_PATH_MISSING, NOT_A_MODEL_FOLDER):
        suggestion, confident = cleaned, True  # stripping is still right; the rest needs a human
    else:
        suggestion, confident = None, False
    message = f"model ID {_q(value)} has {what}"
    if inner.rule is not None:
        message += f"; stripped, {inner.message[0].lower()}{inner.message[1:]}"
    return Diagnosis(INVALID_REPO_ID, message, suggestion, confident, form=inner.form,
                     repo_id=inner.repo_id, revision=inner.revision, evidence=evidence)


def _diagnose(value: str, kind: str, base_dir: Path | None, cached_ids: Collection[str]) -> Diagnosis:
    if value == "":
        return Diagnosis(INVALID_REPO_ID, "model ID is empty", form="invalid", evidence={"problems": ["empty"]})
    url = _diagnose_url(value)
    if url is not None:
        return url
    if _SCHEME.match(value):
        return Diagnosis(INVALID_REPO_ID, f"{_q(value)} is a URL: from_pretrained takes a Hub ID (org/name) "
                         "or a local folder", form="invalid", evidence={"problems": ["url"]})
    if kind == "publish":
        if looks_local(value):
            return Diagnosis(INVALID_REPO_ID, f"publish target {_q(value)} is a local path, not a Hub repo ID",
                             form="invalid", evidence={"problems": ["local_path"]})
    elif looks_local(value) or any(_exists(p) for p in _candidates(value, base_dir)):
        return _diagnose_local(value, kind, base_dir)
    if value.startswith("models--"):
        repo_id = hf_cache.folder_to_repo_id(value)
        if repo_id is not None and is_valid_repo_id(repo_id):
            return Diagnosis(DASH_SEPARATED_ID, f"{_q(value)} is an HF cache folder name; the Hub ID is {_q(repo_id)}",
                             repo_id, True, repo_id=repo_id, evidence={"form": "cache_folder"})
    problems = repo_id_problems(value)
    if problems and "/" not in value and {p.code for p in problems} == {"length"}:
        dashed = _dash_split(value, cached_ids)  # org-name is longer than 96; org/name need not be
        if dashed is not None:
            return dashed
    if problems:
        return _diagnose_invalid(value, problems)
    if "/" in value:
        return Diagnosis(None, form="hub", repo_id=value)
    return _diagnose_single(value, kind, cached_ids)


def _diagnose_url(value: str) -> Diagnosis | None:
    match = _HUB_URL.match(value)
    if match is None:
        return None
    segments = [unquote(s) for s in match.group("path").split("/") if s]
    if segments and segments[0].lower() in ("datasets", "spaces"):
        what = "dataset" if segments[0].lower() == "datasets" else "Space"
        return Diagnosis(URL_NOT_ID, f"{_q(value)} is the URL of a {what}, not of a model", form="url",
                         evidence={"url_kind": what.lower()})
    if segments and segments[0].lower() == "models" and len(segments) > 1:
        segments = segments[1:]
    if not segments:
        return Diagnosis(URL_NOT_ID, f"{_q(value)} is a Hub URL without a repo", form="url")
    if len(segments) == 1:
        repo_id = known_models.canonical_id(segments[0]) or segments[0]
        revision = None
    else:
        repo_id = f"{segments[0]}/{segments[1]}"
        revision = segments[3] if len(segments) >= 4 and segments[2] in _URL_REV_KINDS else None
    if repo_id.endswith(".git"):
        repo_id = repo_id[:-4]
    if not is_valid_repo_id(repo_id):
        return Diagnosis(URL_NOT_ID, f"{_q(value)} is a URL, not a model ID", form="url")
    message = f"{_q(value)} is a URL, not a model ID; the ID is {_q(repo_id)}"
    evidence: dict[str, Any] = {}
    if revision:
        message += f" and the revision {_q(revision)}"
        evidence["revision"] = revision
    return Diagnosis(URL_NOT_ID, message, repo_id, True, form="url", repo_id=repo_id, revision=revision,
                     evidence=evidence)


_FILES_BY_KIND = {
    "model": ("config.json",),
    "tokenizer": ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "tekken.json",
                  "vocab.json", "spiece.model", "sentencepiece.bpe.model"),
    "adapter": ("adapter_config.json",),
}


def _diagnose_local(value: str, kind: str, base_dir: Path | None) -> Diagnosis:
    candidates = _candidates(value, base_dir)
    found = next((p for p in candidates if _exists(p)), None)
    if found is None:
        cached = hf_cache.snapshot_revision(Path(value))
        message = f"local model path {_q(value)} does not exist"
        if len(candidates) > 1:
            message += f" (tried from {candidates[0].parent if base_dir is None else base_dir} and the current folder)"
        evidence: dict[str, Any] = {"tried": [str(p) for p in candidates]}
        if cached is not None and is_valid_repo_id(cached[0]):
            message += f"; it is the HF cache of {_q(cached[0])}"
            return Diagnosis(LOCAL_PATH_MISSING, message, cached[0], False, form="local", revision=cached[1],
                             evidence={**evidence, "revision": cached[1]})
        return Diagnosis(LOCAL_PATH_MISSING, message, form="local", evidence=evidence)
    if not found.is_dir():
        return Diagnosis(NOT_A_MODEL_FOLDER, f"local path {_q(value)} is a file, not a model folder",
                         form="local", evidence={"path": str(found)})
    try:
        names = sorted(entry.name for entry in os.scandir(found))
    except OSError as exc:
        return Diagnosis(NOT_A_MODEL_FOLDER, f"local folder {_q(value)} cannot be read ({exc.strerror})", form="local")
    wanted = _FILES_BY_KIND.get(kind, _FILES_BY_KIND["model"])
    if any(name in names for name in wanted):
        return Diagnosis(None, form="local")
    evidence = {"files": names[:20], "expected": list(wanted)}
    cache_id = hf_cache.folder_to_repo_id(found.resolve().name) if "snapshots" in names else None
    if cache_id is not None and is_valid_repo_id(cache_id):
        return Diagnosis(NOT_A_MODEL_FOLDER, f"local folder {_q(value)} is the HF cache folder of {_q(cache_id)}, "
                         "not a model folder (use the Hub ID or a snapshots/<commit> folder)",
                         cache_id, False, form="local", evidence=evidence)
    if kind == "model" and "adapter_config.json" in names:
        return Diagnosis(NOT_A_MODEL_FOLDER, f"local folder {_q(value)} holds a PEFT adapter (adapter_config.json), "
                         "not a full model: only AutoPeftModel classes load it", form="local",
                         severity=Severity.WARNING, evidence=evidence)
    return Diagnosis(NOT_A_MODEL_FOLDER, f"local folder {_q(value)} has no {' / '.join(wanted[:3])}: not a {kind} folder",
                     form="local", evidence=evidence)


def _diagnose_invalid(value: str, problems: list[RepoIdProblem]) -> Diagnosis:
    codes = [p.code for p in problems]
    evidence: dict[str, Any] = {"problems": codes}
    if "/" not in value and codes == ["double_dash"]:
        parts = value.split("--")
        if len(parts) == 2 and is_valid_repo_id(f"{parts[0]}/{parts[1]}"):
            repo_id = f"{parts[0]}/{parts[1]}"
            return Diagnosis(DASH_SEPARATED_ID, f"{_q(value)} uses the cache separator '--'; the Hub ID is {_q(repo_id)}",
                             repo_id, True, repo_id=repo_id, evidence={"form": "cache_separator"})
    message = f"model ID {_q(value)} " + "; ".join(p.detail for p in problems)
    if "slashes" in codes:
        message += "; and it is not an existing local folder"
    return Diagnosis(INVALID_REPO_ID, message, form="invalid", evidence=evidence)


def _heuristic_split(value: str) -> tuple[str, str] | None:
    """The postmortem's heuristic, kept as the last resort: the first dash, when an uppercase
    letter or a known model family follows it (``acme-Model-7B``, ``acme-llama-3-8b``)."""
    head, sep, tail = value.partition("-")
    if not sep or not head or not tail:
        return None
    if tail[0].isupper() or known_models.family_org(tail) is not None:
        return head, tail
    return None


def _dash_split(value: str, cached_ids: Collection[str]) -> Diagnosis | None:
    """``org-name`` resolved by the local HF cache, else by the table of known organisations."""
    lowered = value.lower()
    dashed = sorted(rid for rid in cached_ids if "/" in rid and rid.replace("/", "-", 1).lower() == lowered)
    if dashed:
        return Diagnosis(DASH_SEPARATED_ID, f"{_q(value)} is dash-separated; the local HF cache has {_q(dashed[0])}",
                         dashed[0], len(dashed) == 1, repo_id=dashed[0],
                         evidence={"source": "hf_cache", "candidates": dashed})
    splits = known_models.known_org_splits(value)
    splits = [(org, name) for org, name in splits if is_valid_repo_id(f"{org}/{name}")]
    if not splits:
        return None
    repo_id = f"{splits[0][0]}/{splits[0][1]}"
    evidence: dict[str, Any] = {"source": "known_orgs"}
    if len(splits) > 1:
        evidence["candidates"] = [f"{o}/{n}" for o, n in splits]
    return Diagnosis(DASH_SEPARATED_ID, f"{_q(value)} is dash-separated; {_q(splits[0][0])} is an organisation, "
                     f"so the ID is {_q(repo_id)}", repo_id, len(splits) == 1, repo_id=repo_id, evidence=evidence)


def _diagnose_single(value: str, kind: str, cached_ids: Collection[str]) -> Diagnosis:
    """A grammatical single segment: a legacy ID, a dash-separated ``org-name``, or a bare name."""
    if kind == "publish":
        return Diagnosis(MISSING_NAMESPACE, f"publish target {_q(value)} has no namespace: it would be created "
                         "under whoever's token runs the job", form="hub")
    canonical = known_models.canonical_id(value)
    if canonical is not None:
        return Diagnosis(MISSING_NAMESPACE, f"{_q(value)} is a legacy ID without a namespace; the canonical ID is "
                         f"{_q(canonical)}", canonical, True, repo_id=canonical, evidence={"source": "legacy_table"})
    if known_models.canonical_org(value) is not None:
        return Diagnosis(MISSING_NAMESPACE, f"{_q(value)} names an organisation, not a model (org/name)",
                         form="hub", evidence={"source": "known_orgs"})
    dashed = _dash_split(value, cached_ids)
    if dashed is not None:
        return dashed
    named = sorted(rid for rid in cached_ids if rid.partition("/")[2] == value)
    if named:
        return Diagnosis(MISSING_NAMESPACE, f"{_q(value)} has no namespace; the local HF cache has {_q(named[0])}",
                         named[0], len(named) == 1, repo_id=named[0],
                         evidence={"source": "hf_cache", "candidates": named})
    org = known_models.family_org(value)
    if org is not None:
        guess = f"{org}/{value}"
        return Diagnosis(MISSING_NAMESPACE, f"{_q(value)} has no namespace; {_q(org)} publishes this family, "
                         f"so probably {_q(guess)}", guess, False, repo_id=guess, evidence={"source": "model_family"})
    split = _heuristic_split(value)
    if split is not None and is_valid_repo_id(f"{split[0]}/{split[1]}"):
        guess = f"{split[0]}/{split[1]}"
        return Diagnosis(DASH_SEPARATED_ID, f"{_q(value)} looks dash-separated (org-Name); probably {_q(guess)}",
                         guess, False, repo_id=guess, evidence={"source": "heuristic"})
    return Diagnosis(MISSING_NAMESPACE, f"{_q(value)} has no namespace (org/name)", form="hub", repo_id=value)


# --------------------------------------------------------------------------- the gate


def _finding(d: Diagnosis, ref: ModelRef) -> Finding:
    assert d.rule is not None
    evidence = {"value": ref.value, "kind": ref.kind, **d.evidence}
    if d.suggestion is not None:
        evidence["confident"] = d.confident
    return d.rule.finding(d.message, ref.location, suggestion=d.suggestion, evidence=evidence,
                          severity=d.severity, line=ref.line)


def check(
    *,
    ids: Sequence[ModelRef],
    release: bool = False,
    online: bool = False,
    client: Any = None,
    env: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
    source: str | None = None,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Check every model ID in ``ids``; yield a finding for each problem.

    ``release`` demands a 40-hex commit for every model and adapter from the Hub. ``online``
    asks the Hub (``client``, default huggingface_hub; ``HF_HUB_OFFLINE`` respected) whether each
    repo exists, is gated and has the revision. ``env`` (default the process environment) gives
    the HF cache location and the token. ``source`` names the file for the skip message.
    """
    if not ids:
        where = f" in {source}" if source else ""
        raise GateSkipped(f"no model-ID fields{where} (looked for model.id, model.name, base_model, "
                          "model_name_or_path, ...)")
    env = os.environ if env is None else env
    cached: tuple[str, ...] | None = None
    counts = {"ids": len(ids), "hub": 0, "local": 0, "online_lookups": 0}
    if online and client is None:
        from sftgate.gates.config import hub_client

        try:
            client = hub_client.make_client(env)
        except hub_client.HubUnavailable as exc:
            offline = hub_client.is_offline(env)
            yield ONLINE_CHECK_SKIPPED.finding(
                f"online checks not run: {exc}", ids[0].location, line=ids[0].line,
                severity=Severity.WARNING if offline else Severity.ERROR,
            )
            online = False
    for ref in ids:
        if cached is None and _needs_cache(ref.value):
            cached = hf_cache.cached_model_ids(cache_dir, env=env)
        d = diagnose(ref.value, kind=ref.kind, base_dir=ref.base_dir, cached_ids=cached or ())
        counts["local" if d.form == "local" else "hub"] += 1
        if d.rule is not None:
            yield _finding(d, ref)
        if d.form == "local" or ref.kind == "publish":
            continue
        yield from _check_revision(ref, d, release, online, client, counts)
    if metrics is not None:
        metrics["ids_checked"] = counts["ids"]
        if counts["local"]:
            metrics["local_folders"] = counts["local"]
        if counts["online_lookups"]:
            metrics["online_lookups"] = counts["online_lookups"]


def _needs_cache(value: str) -> bool:
    text = value.strip()
    return "/" not in text and not looks_local(text)


def _check_revision(ref: ModelRef, d: Diagnosis, release: bool, online: bool, client: Any,
                    counts: dict[str, int]) -> Iterator[Finding]:
    rev_location = ref.revision_location or ref.location
    rev_line = ref.revision_line if ref.revision_location else ref.line
    revision = ref.revision if ref.revision is not None else d.revision
    valid_revision = revision
    if ref.revision is not None:
        problems = revision_problems(ref.revision)
        if problems:
            stripped = ref.revision.strip()
            fixed = stripped if stripped and not revision_problems(stripped) else None
            yield INVALID_REVISION.finding(
                f"revision {_q(ref.revision)} " + "; ".join(problems), rev_location, suggestion=fixed,
                evidence={"revision": ref.revision, "confident": fixed is not None}, line=rev_line,
            )
            valid_revision = fixed
    sha: str | None = None
    repo_id = d.repo_id if d.rule is None or d.suggestion is not None else None
    if online and repo_id and is_valid_repo_id(repo_id):
        from sftgate.gates.config import hub_client

        counts["online_lookups"] += 1
        try:
            status = client.lookup(repo_id, valid_revision)
        except hub_client.HubUnavailable as exc:
            yield ONLINE_CHECK_SKIPPED.finding(f"online checks not run for {_q(repo_id)}: {exc}", ref.location,
                                               line=ref.line, severity=Severity.ERROR)
            return
        checked_suggestion = d.rule is not None
        if not status.exists:
            if not checked_suggestion:
                yield NOT_FOUND.finding(
                    f"{_q(repo_id)} does not exist on the Hub, or is private and HF_TOKEN cannot read it",
                    ref.location, evidence={"repo_id": repo_id}, line=ref.line,
                )
            return
        if status.gated:
            if status.access:
                yield GATED.finding(f"{_q(repo_id)} is gated; this token has access, and every machine that "
                                    "loads it needs such a token (HF_TOKEN)", ref.location,
                                    evidence={"repo_id": repo_id, "access": True}, line=ref.line,
                                    severity=Severity.WARNING)
            else:
                yield GATED.finding(f"{_q(repo_id)} is gated and this token has no access: accept its conditions "
                                    f"on https://huggingface.co/{repo_id} and set HF_TOKEN", ref.location,
                                    evidence={"repo_id": repo_id, "access": False}, line=ref.line)
                return
        if valid_revision is not None and status.revision_exists is False:
            yield REVISION_NOT_FOUND.finding(f"revision {_q(valid_revision)} does not exist in {_q(repo_id)}",
                                             rev_location, evidence={"repo_id": repo_id, "revision": valid_revision},
                                             line=rev_line)
            return
        sha = status.sha
    if release and ref.kind in ("model", "adapter") and not is_commit(valid_revision):
        yield _unpinned(ref, revision, valid_revision, sha, rev_location, rev_line)


def _unpinned(ref: ModelRef, revision: str | None, valid: str | None, sha: str | None, location: str,
              line: int | None) -> Finding:
    if revision is None:
        what = f"{_q(ref.value)} has no revision"
        location, line = ref.location, ref.line
    elif valid is not None and _COMMIT.match(valid.lower()):
        what = f"revision {_q(revision)} is an upper-case commit hash"
        sha = sha or valid.lower()
    elif valid is not None and _HEX.match(valid):
        what = f"revision {_q(revision)} is a short commit hash"
    else:
        what = f"revision {_q(revision)} is a branch or tag"
    message = f"{what}; a release needs a 40-hex commit"
    if sha:
        message += f" ({_q(revision or 'main')} is {sha[:12]}… now)"
    return UNPINNED_REVISION.finding(message, location, suggestion=sha, line=line,
                                     evidence={"revision": revision, "confident": sha is not None})


# --------------------------------------------------------------------------- from configs


def refs_from_document(doc: Document, *, sftgate: bool, base_dir: Path | None = None) -> list[ModelRef]:
    """The model-ID fields of ``doc`` as :class:`ModelRef` objects, located ``FILE:key.path``."""
    fields = model_id_fields.sftgate_fields(doc.data) if sftgate else model_id_fields.find_id_fields(doc.data)
    base = base_dir if base_dir is not None else doc.path.parent
    return [
        ModelRef(
            value=f.value,
            location=doc.location(f.path),
            line=doc.line_of(f.path),
            revision=f.revision,
            revision_location=doc.location(f.revision_path) if f.revision_path else None,
            revision_line=doc.line_of(f.revision_path) if f.revision_path else None,
            kind=f.kind,
            base_dir=base,
        )
        for f in fields
    ]


def from_config(config: Any) -> dict[str, Any] | None:
    """Keyword arguments for :func:`check` from an sftgate config: ``model.id`` with
    ``model.revision``, ``model.tokenizer``, the publish target ``release.repo_id``, and release
    mode from ``release.require_pinned_revision``."""
    refs = refs_from_document(config.doc, sftgate=True, base_dir=config.base_dir)
    if not refs:
        return None
    return {"ids": refs, "release": bool(config.get("release.require_pinned_revision")), "source": str(config.path)}


def from_document(doc: Document) -> dict[str, Any]:
    """Keyword arguments for :func:`check` from any JSON or YAML config (its model-ID fields)."""
    return {"ids": refs_from_document(doc, sftgate=False), "source": str(doc.path)}
