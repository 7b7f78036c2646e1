"""Triage job logs: map known failure messages to the gate and rule that would have caught them.

The postmortem's last request: scan old logs for the same failure. Each pattern in
:data:`PATTERNS` recognises one message that transformers, huggingface_hub, PEFT or ``json``
print when a job dies (``X is not a local folder and is not a valid model identifier``,
HFValidationError, gated repos, ``is not a valid git identifier``, ...). A model ID pulled out of
a message is run through the model-ID gate's own :func:`sftgate.gates.config.model_id_diagnosis.diagnose`, so the finding
carries that gate's rule (``dash_separated_id``, ``url_not_id``, ...) and its suggestion
(``mistralai/Mistral-7B-Instruct``).

Findings are located ``LOG:LINE`` at the first occurrence; repeats of the same failure in the
same log are counted in the evidence, not reported again.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sftgate.gates.config import hub_id_grammar, model_id_diagnosis, model_id_rules
from sftgate.gates.frame.core import Finding, InputError, Rule, Severity
from sftgate.gates.readers import textfile

LOG_SUFFIXES = (".log", ".txt", ".out", ".err", ".gz")
MAX_LINE = 20_000
MAX_DECOMPRESSED = 2 << 30  # bytes a .gz log may expand to
_WRAP_TAIL = 400  # how much of the line before is joined to one that may continue its message
_WRAP_MIN = 60  # a line at least this long, ending mid-word, may have been cut by a terminal

KNOWN_FAILURE = Rule(
    "TRI001", "known_failure", Severity.ERROR, "triage",
    "a known failure whose gate rule is not installed in this sftgate",
    "The log shows a failure that a gate catches before the job starts.",
    "Run the gate named in the finding's evidence before queueing the job.",
)
RULES: tuple[Rule, ...] = (KNOWN_FAILURE,)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Hit:
    """What one matching line means: the rule that would have caught it, and the fix."""

    gate: str
    rule: str
    message: str
    key: str  # failures with the same key in one log are one finding
    suggestion: str | None = None
    severity: Severity | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pattern:
    name: str
    regex: re.Pattern[str]
    explain: Callable[[re.Match[str]], Hit | None]


def _clean_id(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"`":
        text = text[1:-1]
    return text


def _model_id_hit(raw: str, what: str, *, fallback: str = "not_found") -> Hit:
    """Run a model ID pulled from a log through the model-ID gate's diagnosis.

    The job failed on that ID, so the finding is an error even when the fix is a guess (an
    organisation no table knows): the guess stays a suggestion, with every reading in the evidence.
    """
    value = _clean_id(raw)
    d = model_id_diagnosis.diagnose(value)
    if d.rule is not None:
        evidence = {"id": value, "confident": d.confident}
        if d.evidence.get("candidates"):
            evidence["candidates"] = d.evidence["candidates"]
        return Hit("model-id", d.rule.name, f"{what}: {d.message}", f"id:{value}", d.suggestion, Severity.ERROR,
                   evidence)
    if fallback == "not_found":
        message = (f"{what}: {value!r} is a well-formed Hub ID, so the repo does not exist, is private, "
                   "or the job had no HF_TOKEN (`sftgate model-id ID --online` checks)")
    else:
        message = f"{what}: {value!r}"
    return Hit("model-id", fallback, message, f"id:{value}", None, None, {"id": value})


def _not_valid_identifier(m: re.Match[str]) -> Hit:
    return _model_id_hit(m.group("id"), "load failed ('is not a local folder and is not a valid model identifier')")


def _hf_validation(m: re.Match[str]) -> Hit:
    value = _clean_id(m.group("id"))
    hit = _model_id_hit(value, "HFValidationError", fallback="invalid_repo_id")
    return hit


def _cant_load(m: re.Match[str]) -> Hit | None:
    value = _clean_id(m.group("id"))
    d = model_id_diagnosis.diagnose(value)
    if d.rule is None:  # a well-formed ID: this message has many causes (network, missing files)
        return None
    return _model_id_hit(value, f"can't load {m.group('what')}")


def _gated(m: re.Match[str]) -> Hit:
    repo_id = m.group("id").rstrip(".")
    return Hit("model-id", "gated",
               f"gated repo {repo_id!r}: the job's token has no access; accept the conditions on the model page "
               "and set HF_TOKEN on the training machine", f"gated:{repo_id}", None, None, {"id": repo_id})


_URL_TAIL = re.compile(r"/(?:resolve|revision|tree|blob|raw|commit)/.*\Z")


def _repo_not_found(m: re.Match[str]) -> Hit:
    path = m.group("path").rstrip(".")
    path = path.removeprefix("api/models/")
    return _model_id_hit(_URL_TAIL.sub("", path), "RepositoryNotFoundError")


def _revision(m: re.Match[str]) -> Hit:
    revision = m.group("rev").strip("'\"")
    repo_id = (m.groupdict().get("id") or "").rstrip(".'") or None
    where = f" in {repo_id!r}" if repo_id else ""
    if hub_id_grammar.revision_problems(revision):
        return Hit("model-id", "invalid_revision", f"revision {revision!r}{where} is not a valid git ref",
                   f"rev:{revision}", revision.strip() or None, None, {"id": repo_id, "revision": revision})
    return Hit("model-id", "revision_not_found",
               f"revision {revision!r} does not exist{where}; pick one from the model page "
               "(`sftgate model-id ID --revision REV --online` checks)",
               f"rev:{revision}", None, None, {"id": repo_id, "revision": revision})


def _static(gate: str, rule: str, message: str, severity: Severity | None = None) -> Callable[[re.Match[str]], Hit]:
    def explain(m: re.Match[str]) -> Hit:
        detail = m.groupdict().get("detail")
        text = message + (f": {detail.strip()}" if detail else "")
        return Hit(gate, rule, text, f"{gate}:{rule}:{detail or ''}", None, severity)

    return explain


_HF_URL = r"https?://(?:www\.)?(?:huggingface\.co|hf\.co)/"

PATTERNS: tuple[Pattern, ...] = (
    Pattern("not_a_valid_model_identifier", re.compile(
        r"(?P<id>'[^']{0,300}'|\"[^\"]{0,300}\"|\S{1,300}) is not a local folder and is not a valid model identifier"), _not_valid_identifier),
    # transformers 5.x: "X is not a local folder or a valid repository name on 'https://hf.co'."
    Pattern("not_a_valid_repository_name", re.compile(
        r"(?P<id>'[^']{0,300}'|\"[^\"]{0,300}\"|\S{1,300}) is not a local folder or a valid repository name on"), _not_valid_identifier),
    Pattern("hf_validation_error", re.compile(
        r"(?:Repo id must (?:be in the form|use alphanumeric)[^:]*"
        r"|Cannot have -- or \.\. in repo_id|Repo_id cannot end by '\.git'"
        r"|Incorrect path_or_model_id)\s*:\s*'(?P<id>[^\n]{0,300})'"), _hf_validation),
    Pattern("cant_load", re.compile(
        r"Can't load (?:the )?(?P<what>tokenizer|configuration|config|model)(?: \w+)? (?:for|of) '(?P<id>[^']+)'"),
        _cant_load),
    Pattern("gated_repo", re.compile(
        r"(?:Cannot access gated repo for url " + _HF_URL + r"|Access to model |"
        r"Make sure to have access to it at " + _HF_URL + r")(?P<id>[A-Za-z0-9._-]+/[A-Za-z0-9._-]+)"), _gated),
    # transformers 5.x: "X is a gated repository. Make sure to request access at https://huggingface.co/X ..."
    Pattern("gated_repository", re.compile(
        r"(?P<id>[A-Za-z0-9._-]+/[A-Za-z0-9._-]+) is a gated repository\. Make sure to request access"), _gated),
    Pattern("revision_not_valid_git_identifier", re.compile(
        r"(?P<rev>\S{1,300}) is not a valid git identifier \(branch name, tag name or commit id\)"
        r"(?:.*?" + _HF_URL + r"(?P<id>[A-Za-z0-9._-]+/[A-Za-z0-9._-]+))?"), _revision),
    Pattern("revision_not_found", re.compile(
        r"Revision Not Found for url: " + _HF_URL + r"api/models/(?P<id>[^/\s]+/[^/\s]+)/revision/(?P<rev>[^\s]+?)\.?$"),
        _revision),
    Pattern("invalid_rev_id", re.compile(r"Invalid rev id: (?P<rev>\S{1,300})"), _revision),
    Pattern("repository_not_found", re.compile(
        r"Repository Not Found for url: " + _HF_URL + r"(?P<path>[^\s?#]+)"),
        _repo_not_found),
    Pattern("trust_remote_code", re.compile(
        r"(?:contains custom code which must be executed|requires you to execute the \w* ?file in that repo"
        r"|pass the argument `trust_remote_code=True`)"),
        _static("artifacts", "remote_code", "the model needs trust_remote_code (custom code from the Hub)")),
    Pattern("peft_target_modules", re.compile(r"Target modules? (?P<detail>.{0,300}?) not found in the base model"),
            _static("lora-targets", "target_modules_missing", "LoRA target modules not found in the base model")),
    Pattern("json_extra_data", re.compile(r"JSONDecodeError: Extra data"),
            _static("strict-json", "trailing_text", "JSON output followed by extra text")),
    Pattern("json_unterminated", re.compile(r"JSONDecodeError: Unterminated string"),
            _static("strict-json", "unterminated_json", "JSON output cut off inside a string")),
    Pattern("json_no_value", re.compile(r"JSONDecodeError: Expecting value: line 1 column 1 \(char 0\)"),
            _static("strict-json", "no_json_start", "output does not start with JSON (prose or a code fence)")),
    Pattern("token_indices_too_long", re.compile(
        r"Token indices sequence length is longer than the specified maximum sequence length"),
        _static("dataset-schema", "too_long", "examples longer than the model's maximum: the EOS is cut off",
                Severity.WARNING)),
)


def _rule(gate: str, name: str) -> Rule | None:
    """The rule object of ``gate`` named ``name``, importing only that gate's module."""
    if gate == "model-id":
        return next((r for r in model_id_rules.RULES if r.name == name), None)
    from sftgate.gates.frame import registry

    try:
        module = registry.get(gate).load()
    except (KeyError, ImportError):
        return None
    return next((r for r in getattr(module, "RULES", ()) if r.name == name), None)


def _explain(text: str) -> Hit | None:
    for pattern in PATTERNS:
        match = pattern.regex.search(text)
        if match is None:
            continue
        hit = pattern.explain(match)
        if hit is not None:
            hit.evidence["pattern"] = pattern.name
            return hit
    return None


def scan_lines(lines: Iterable[str]) -> Iterator[tuple[int, str, Hit]]:
    """``(line number, line, hit)`` for every line a pattern explains (the first pattern wins).

    Lines end at ``\n`` only: a bare ``\r`` (a progress bar redrawing itself) is not a line break,
    so line numbers are those of an editor. A message wrapped over two lines (a terminal or log
    collector that cuts long lines) is found on the two joined, at the line where it starts; a
    line that starts with what reads as an ID, right after a long line cut mid-word, is read
    joined to it first (the ID was cut).
    """
    previous: tuple[int, str] | None = None
    for number, raw in enumerate(lines, start=1):
        line = _ANSI.sub("", raw[:MAX_LINE]).rstrip("\r\n")
        hit = _explain(line)
        cut = previous is not None and len(previous[1]) >= _WRAP_MIN and not previous[1][-1:].isspace()
        if hit is not None and not (cut and hit.evidence.get("id") and line.startswith(str(hit.evidence["id"]))):
            previous = None
            yield number, line, hit
            continue
        joined = _joined(previous, line) if previous is not None and line else None
        if joined is not None:
            previous = None
            yield joined[0], joined[1], joined[2]
            continue
        if hit is not None:
            previous = None
            yield number, line, hit
            continue
        previous = (number, line) if line.strip() else None


def _joined(previous: tuple[int, str], line: str) -> tuple[int, str, Hit] | None:
    """A hit on the line before and this one read as one line (cut mid-word, or at a space)."""
    tail = previous[1][-_WRAP_TAIL:].rstrip("\r")
    for joiner in ("", " "):
        hit = _explain(tail + joiner + line.lstrip())
        if hit is not None:
            hit.evidence["wrapped"] = True
            return previous[0], previous[1], hit
    return None


def resolve_logs(paths: Sequence[str | Path]) -> list[Path]:
    """The log files to read: files as given, folders expanded to their log files (recursively)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(LOG_SUFFIXES))
            if not found:
                raise InputError(f"{raw}: no log files here ({', '.join(LOG_SUFFIXES)})")
            out.extend(found)
        elif p.exists():  # a file, or a FIFO / process substitution (read with limits)
            out.append(p)
        else:
            raise InputError(f"{raw}: no such file", hint="give log files or folders of logs")
    return out


def _open(path: Path) -> IO[str]:
    """Text lines ending at ``\n`` only (``newline="\n"``): a bare ``\r`` stays inside its line.

    A ``.gz`` log is read through :class:`_Capped`: at most :data:`MAX_DECOMPRESSED` bytes."""
    raw: Any = textfile.open_input(path, expected="a log file")
    if path.suffix.lower() == ".gz":
        raw = _Capped(gzip.GzipFile(fileobj=raw, mode="rb"), raw, path)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="\n")


def _lines(handle: IO[str]) -> Iterator[str]:
    """The lines of ``handle``, each at most :data:`MAX_LINE` characters: the rest of a longer
    line is read past, never held (a log of one endless line stays in bounded memory)."""
    while line := handle.readline(MAX_LINE):
        if len(line) == MAX_LINE and not line.endswith("\n"):
            while (rest := handle.readline(1 << 16)) and not rest.endswith("\n"):
                pass
        yield line


class _Capped(io.RawIOBase):
    """A gzip stream that stops at :data:`MAX_DECOMPRESSED` bytes (a gzip bomb is an input error)."""

    def __init__(self, inner: Any, source: Any, path: Path) -> None:
        self.inner, self.source, self.path, self.total = inner, source, path, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        self.total += len(data)
        if self.total > MAX_DECOMPRESSED:
            raise InputError(f"{self.path}: decompresses to more than {MAX_DECOMPRESSED >> 30} GiB (a gzip bomb?)",
                             hint="decompress it yourself and triage the part that matters")
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.inner.close()
        self.source.close()
        super().close()


def check(*, logs: Sequence[str | Path], metrics: dict[str, Any] | None = None) -> Iterator[Finding]:
    """One finding per distinct known failure per log, at its first line."""
    files = resolve_logs(logs)
    scanned = 0
    for path in files:
        seen: dict[str, tuple[int, Hit, list[int]]] = {}
        counter = _Counter()
        try:
            with _open(path) as handle:
                for number, _line, hit in scan_lines(counter.count(_lines(handle))):
                    if hit.key in seen:
                        first, known, lines = seen[hit.key]
                        lines.append(number)
                        if not known.evidence.get("id") and hit.evidence.get("id"):  # keep the richer message
                            seen[hit.key] = (first, hit, lines)
                    else:
                        seen[hit.key] = (number, hit, [number])
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise InputError(f"{path}: a truncated or corrupt .gz file ({exc})",
                             hint="check the download; `gzip -t FILE` tests it") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
        scanned += counter.lines
        for first, hit, lines in seen.values():
            yield _finding(path, first, hit, lines)
    if metrics is not None:
        metrics["logs"] = len(files)
        metrics["lines"] = scanned


class _Counter:
    def __init__(self) -> None:
        self.lines = 0

    def count(self, lines: Iterable[str]) -> Iterator[str]:
        for line in lines:
            self.lines += 1
            yield line


def _finding(path: Path, line: int, hit: Hit, lines: list[int]) -> Finding:
    rule = _rule(hit.gate, hit.rule)
    evidence = {"gate": hit.gate, "rule": hit.rule, **hit.evidence, "occurrences": len(lines), "lines": lines[:20]}
    message = f"{hit.message} [caught by {hit.gate} / {hit.rule}]"
    if rule is None:
        return KNOWN_FAILURE.finding(message, f"{path}:{line}", suggestion=hit.suggestion, evidence=evidence,
                                     severity=hit.severity, line=line)
    return rule.finding(message, f"{path}:{line}", suggestion=hit.suggestion, evidence=evidence,
                        severity=hit.severity or rule.severity, line=line)
