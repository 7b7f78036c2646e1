"""Is a ``generation_config.json`` one transformers will save? Validated as ``save_pretrained`` does.

``GenerationConfig.save_pretrained`` calls ``validate(strict=True)`` on a config that changed since
it was loaded (and a trainer or a merge always changes it: new stop ids, a pad id), and refuses
to save on any issue, the "minor" ones included: ``do_sample`` false (or unset) with
``temperature`` / ``top_p`` / ``top_k`` set crashes the save after training (transformers #29988,
LlamaFactory #2479). The installed transformers is the reference: its ``validate`` decides, and
each attribute it names is one problem. Without transformers (the core install) nothing is said.

::

    for problem in generation_config_problems("models/base/generation_config.json"):
        print(problem.attribute, problem.line, problem.message)
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ISSUE_LINE = re.compile(r"^- `(?P<attr>\w+)`: (?P<msg>.*)$")
FLAG = re.compile(r"`(?P<attr>[a-z_]+)`")


@dataclass(frozen=True)
class GenerationProblem:
    """One reason transformers refuses the file: the key at fault (when it names one), its line."""

    attribute: str | None
    message: str
    line: int | None = None
    suggestion: str | None = None


def generation_config_problems(path: str | Path) -> list[GenerationProblem]:
    """Every problem ``GenerationConfig.validate(strict=True)`` finds in the file at ``path``."""
    from sftgate.gates.frame.core import InputError
    from sftgate.gates.readers import document

    file = Path(path)
    try:
        text = file.read_text("utf-8")
        data = json.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        return [GenerationProblem(None, f"unreadable ({exc})")]
    except json.JSONDecodeError as exc:
        return [GenerationProblem(None, f"not JSON: {exc.msg}", exc.lineno, "fix the JSON syntax")]
    if not isinstance(data, dict):
        return [GenerationProblem(None, f"expected a JSON object, got {type(data).__name__}")]
    try:
        from transformers import GenerationConfig
    except ImportError:  # pragma: no cover - the core install: transformers' rules are not ours to guess
        return []
    try:
        lines = document.loads(text, file, is_json=True)
    except InputError:
        lines = None

    def line(attr: str | None) -> int | None:
        return lines.lines.get((attr,)) if lines is not None and attr else None

    with _quiet():
        try:
            config = GenerationConfig.from_dict(dict(data))
            config.validate(strict=True)
        except ValueError as exc:
            return list(_problems(str(exc), data, line))
        except Exception as exc:  # a value of the wrong type: validate compares it and raises TypeError
            attr = _first_flag(str(exc), data)
            return [GenerationProblem(attr, f"transformers cannot validate it: {type(exc).__name__}: "
                                            f"{_first(str(exc))}", line(attr))]
    return []


def _problems(message: str, data: dict[str, object], line: object) -> Iterator[GenerationProblem]:
    issues = [m for m in map(ISSUE_LINE.match, message.splitlines()) if m]
    if not issues:  # a hard error: one sentence, usually naming the flag
        attr = _first_flag(message, data)
        yield GenerationProblem(attr, _first(message.replace("GenerationConfig is invalid:", "")), line(attr))  # type: ignore[operator]
        return
    for match in issues:
        attr = match.group("attr")
        suggestion = None
        if "`do_sample` is not set to `True`" in match.group("msg"):
            suggestion = f'"do_sample": true (sampling was meant), or remove "{attr}"'
        elif "`num_beams` is set to" in match.group("msg"):
            suggestion = f'"num_beams" > 1, or remove "{attr}"'
        yield GenerationProblem(attr, _first(match.group("msg")), line(attr), suggestion)  # type: ignore[operator]


def _first_flag(message: str, data: dict[str, object]) -> str | None:
    flags = [m.group("attr") for m in FLAG.finditer(message)]
    return next((f for f in flags if f in data), flags[0] if flags else None)


def _first(text: str) -> str:
    lines = [s.strip() for s in text.strip().splitlines() if s.strip()]
    return lines[0][:300] if lines else "invalid"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(before)
