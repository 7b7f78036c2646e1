"""A strict JSON parser that names the failure class instead of echoing ``json``'s message.

Standard library only, and fast on the common case: a model output that is clean JSON costs one
``json`` decode (in C) after a first-character check. Only outputs that fail take the slow path, a
structural scanner (iterative, so deep nesting cannot blow the stack) that classifies the failure
from the text's structure:

==================== ==========================================================================
rule                 the text...
==================== ==========================================================================
no_json_start        starts (after whitespace) with something that cannot start a JSON value:
                     prose, nothing at all, a byte order mark
code_fence           is wrapped in a Markdown fence (```` ``` ```` or ``~~~``, with or without a
                     language tag); reported, never silently stripped
unterminated_json    ends while a string, object, array, number or literal is still open
truncated            is unterminated and the generation hit its token limit
                     (``stop_reason="length"``): raise ``max_new_tokens`` or train EOS
trailing_text        has anything but whitespace after the first complete value
invalid_json         breaks the grammar in any other way: single quotes, trailing commas,
                     comments, unquoted keys, raw control characters in strings, bad escapes
duplicate_key        repeats a key in one object (Python's ``json`` keeps the last one silently)
non_finite_number    holds ``NaN``, ``Infinity`` or ``-Infinity`` (Python's ``json`` accepts them)
==================== ==========================================================================

Leading and trailing JSON whitespace (space, tab, CR, LF) is valid (RFC 8259) and passes. When
several problems coexist, the structural one wins (an unterminated object with a duplicate key is
``unterminated_json``): it is the one whose fix changes the output most.

Valid: ``{"a": 1}``, ``  [1, 2]\\n``, ``"text"``, ``null``.
Invalid: ``{'a': 1}`` (invalid_json), ``{"a": 1,}`` (invalid_json), ``{"a": 1`` (unterminated_json),
``{"a": 1} ok`` (trailing_text), ````` ```json\\n{}\\n``` ````` (code_fence), ``Sure! {}``
(no_json_start), ``{"a": 1, "a": 2}`` (duplicate_key), ``{"a": NaN}`` (non_finite_number).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RULE_NAMES", "JsonProblem", "format_path", "parse_strict"]

# The rules this module can return, in the order of the gate's catalogue.
RULE_NAMES = (
    "no_json_start",
    "code_fence",
    "unterminated_json",
    "truncated",
    "trailing_text",
    "invalid_json",
    "duplicate_key",
    "non_finite_number",
)


@dataclass(frozen=True)
class JsonProblem:
    """Why a text is not strict JSON (or, from the schema layer, not a valid value).

    ``rule`` is the rule name, ``detail`` a one-line explanation quoting the offending text,
    ``offset`` the character offset in the text where the problem was found (None when it is not
    about one place), ``path`` the JSON path of the value involved, ``evidence`` a small dict.
    """

    rule: str
    detail: str
    offset: int | None = None
    path: str = "$"
    evidence: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- paths

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


_PATH_KEEP = 8  # a path keeps its first and last 8 steps; deeper ones are elided
_KEY_WIDTH = 60


def format_path(parts: Any) -> str:
    """``["a", 0, "b c"]`` -> ``$.a[0]["b c"]``: identifiers with a dot, other keys quoted.

    Bounded: long keys are cut and a path deeper than 16 steps keeps its ends only.
    """
    parts = list(parts)
    elided = 0
    if len(parts) > 2 * _PATH_KEEP:
        elided = len(parts) - 2 * _PATH_KEEP
        parts = [*parts[:_PATH_KEEP], None, *parts[-_PATH_KEEP:]]
    out = ["$"]
    for part in parts:
        if part is None:
            out.append(f"…({elided} more)…")
        elif isinstance(part, int) and not isinstance(part, bool):
            out.append(f"[{part}]")
        else:
            key = str(part)
            if len(key) > _KEY_WIDTH:
                key = key[: _KEY_WIDTH - 1] + "…"
            if _IDENT.match(key):
                out.append(f".{key}")
            else:
                out.append(f"[{json.dumps(key, ensure_ascii=False)}]")
    return "".join(out)


# --------------------------------------------------------------------------- fast path

_WS = " \t\n\r"  # the only whitespace JSON allows
_VALUE_START = frozenset('{["-0123456789tfnNI')  # N and I: NaN / Infinity, classified later
_FENCES = ("```", "~~~")


class _NotClean(Exception):  # an internal signal to leave the fast path
    pass


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _NotClean
    return obj


def _reject_constant(name: str) -> Any:
    raise _NotClean


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs_hook, parse_constant=_reject_constant)
# The C scanner behind ``decode``, called directly: one value from an offset, nothing else.
_scan_once = _DECODER.scan_once  # type: ignore[attr-defined]


def parse_strict(text: str, *, stop_reason: str | None = None) -> tuple[Any, JsonProblem | None]:
    """Parse ``text`` as strict JSON: ``(value, None)`` when it is, else ``(None, problem)``.

    ``stop_reason`` is the generation's stop reason (``"eos"``, ``"length"`` or None); with
    ``"length"``, JSON that is cut off is reported as ``truncated`` rather than
    ``unterminated_json``. Never raises on any ``str``.
    """
    if text and text[0] in _VALUE_START:  # the common case: no leading whitespace
        start = 0
    else:
        start = len(text) - len(text.lstrip(_WS))
        if start == len(text) or text[start] not in _VALUE_START:
            return None, _bad_start(text, stop_reason)
    try:
        value, end = _scan_once(text, start)
    except StopIteration as stop:
        return None, _classify(text, stop_reason, ValueError(f"Expecting value at {stop.value}"))
    except (_NotClean, ValueError, RecursionError) as exc:
        return None, _classify(text, stop_reason, exc)
    if end != len(text) and text[end:].strip(_WS):
        if text[end - 1] not in '}]"':  # a number or literal may continue ("01", "1. Item"): scan it
            return None, _classify(text, stop_reason, ValueError("Extra data"))
        # A complete, clean container or string (no duplicate key, no NaN): what follows is trailing.
        at = end + len(text[end:]) - len(text[end:].lstrip(_WS))
        return None, JsonProblem(
            "trailing_text",
            f"text after the complete JSON value: {_quote(text, at)}"
            + (" (a second JSON value)" if text[at] in "{[" else ""),
            at,
            evidence={"trailing_chars": len(text) - at, "found": _snippet(text, at)},
        )
    return value, None


# --------------------------------------------------------------------------- bad starts


def _bad_start(text: str, stop_reason: str | None) -> JsonProblem:
    start = len(text) - len(text.lstrip(_WS))
    if start == len(text):
        what = "empty output" if not text else "only whitespace"
        return JsonProblem(
            "no_json_start", f"{what}: no JSON value at all", 0, evidence={"length": len(text)}
        )
    rest = text[start:]
    if rest.startswith(_FENCES):
        return _fence_problem(text, start, stop_reason)
    c = rest[0]
    evidence: dict[str, Any] = {"found": _snippet(text, start)}
    brace = _first_of(text, "{[", start)
    if brace is not None:
        evidence["json_at"] = brace
    if c == "\ufeff":
        detail = "a byte order mark (U+FEFF) before the JSON"
    elif c == "'":
        detail = f"a single-quoted value {_quote(text, start)}: JSON strings use double quotes"
    else:
        detail = f"the text starts with {_quote(text, start)}, which cannot start a JSON value"
        word = _WORD.match(text, start)
        if word is not None and word.group() in _PYTHON_LITERALS:
            detail += f": Python's {word.group()} is JSON's {_PYTHON_LITERALS[word.group()]}"
        fence = text.find("```", start)
        if fence >= 0:
            evidence["fence_at"] = fence
            detail += f"; a Markdown fence follows at offset {fence}"
        elif brace is not None:
            detail += f"; JSON starts later, at offset {brace}"
    return JsonProblem("no_json_start", detail, start, evidence=evidence)


def _fence_problem(text: str, start: int, stop_reason: str | None) -> JsonProblem:
    fence = text[start : start + 3]
    eol = text.find("\n", start)
    header = text[start + 3 : eol if eol >= 0 else len(text)].strip()
    body = text[eol + 1 :] if eol >= 0 else ""
    closing = body.rstrip(_WS)
    closed = closing.endswith(fence)
    if closed:
        body = closing[: -len(fence)]
    evidence: dict[str, Any] = {"language": header[:40] or None, "closed": closed}
    if not body.strip(_WS):
        evidence["inner"] = "empty"
        inner_problem = None
    elif body.lstrip(_WS).startswith(_FENCES):
        evidence["inner"] = "code_fence"
        inner_problem = None
    else:
        _, inner_problem = parse_strict(body, stop_reason=stop_reason)
        evidence["inner"] = inner_problem.rule if inner_problem else "valid"
    tag = f" with language tag {header[:40]!r}" if header else ""
    detail = f"the output is wrapped in a Markdown fence {fence!r}{tag}"
    if evidence["inner"] == "valid":
        detail += "; the JSON inside is valid: remove fences from the training completions"
    elif inner_problem is not None:
        detail += f"; inside it: {inner_problem.rule}"
    return JsonProblem("code_fence", detail, start, evidence=evidence)


# --------------------------------------------------------------------------- the structural scanner

_WS_RUN = re.compile(r"[ \t\n\r]*")
_STR_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NUMBER_LOOSE = re.compile(r"[-+0-9.eE]+")
_NUMBER_PREFIX = re.compile(r"-?(?:(?:0|[1-9][0-9]*)(?:\.|\.[0-9]+(?:[eE][+-]?[0-9]*)?|[eE][+-]?[0-9]*)?)?\Z")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_LITERALS = ("true", "false", "null")
_NON_FINITE = ("NaN", "Infinity", "-Infinity")
_PYTHON_LITERALS = {"True": "true", "False": "false", "None": "null"}
_ESCAPES = frozenset('"\\/bfnrt')
_CLOSERS = {"{": "}", "[": "]"}


class _Stop(Exception):  # carries the problem out of the scanner loop
    def __init__(self, problem: JsonProblem) -> None:
        super().__init__(problem.rule)
        self.problem = problem


class _Frame:
    __slots__ = ("index", "key", "keys", "kind")

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "{" or "["
        self.keys: set[str] = set()
        self.key: str | None = None
        self.index = 0


class _Scanner:
    """Walks ``text`` once and raises :class:`_Stop` with the first structural problem.

    Duplicate keys and non-finite numbers do not stop the walk: the first of them is kept and
    reported only if the structure turns out fine.
    """

    def __init__(self, text: str, stop_reason: str | None) -> None:
        self.text = text
        self.n = len(text)
        self.stop_reason = stop_reason
        self.stack: list[_Frame] = []
        self.soft: JsonProblem | None = None  # first duplicate_key / non_finite_number

    # -- helpers
    def path(self) -> str:
        parts: list[Any] = []
        for frame in self.stack:
            if frame.kind == "[":
                parts.append(frame.index)
            elif frame.key is not None:
                parts.append(frame.key)
        return format_path(parts)

    def stop(self, rule: str, detail: str, offset: int | None, **evidence: Any) -> None:
        if rule == "unterminated_json" and self.stop_reason == "length":
            rule = "truncated"
            detail += "; the generation hit its token limit (stop_reason 'length'): raise max_new_tokens or train EOS"
        if offset is not None and rule != "unterminated_json" and rule != "truncated":
            evidence.setdefault("found", _snippet(self.text, offset))
        raise _Stop(JsonProblem(rule, detail, offset, self.path(), evidence))

    def unterminated(self, what: str, opened_at: int | None = None) -> None:
        open_ = "".join(f.kind for f in self.stack)
        closers = "".join(_CLOSERS[k] for k in reversed(open_))
        evidence: dict[str, Any] = {"open": open_[-20:], "tail": _snippet(self.text, max(0, self.n - 40))}
        if opened_at is not None:
            evidence["opened_at"] = opened_at
        detail = f"the text ends inside {what}"
        if closers:
            detail += f" with {len(open_)} container(s) still open (missing {closers[-20:]!r})"
        self.stop("unterminated_json", detail, self.n, **evidence)

    def ws(self, i: int) -> int:
        return _WS_RUN.match(self.text, i).end()  # type: ignore[union-attr]

    def soft_problem(self, rule: str, detail: str, offset: int, **evidence: Any) -> None:
        if self.soft is None:
            self.soft = JsonProblem(rule, detail, offset, self.path(), evidence)

    # -- values
    def scan(self) -> JsonProblem | None:
        try:
            self._scan()
        except _Stop as stop:
            return stop.problem
        return self.soft

    def _scan(self) -> None:
        text, n = self.text, self.n
        i = self.ws(0)
        expect = "value"  # value | value_or_close | key | key_or_close | colon | comma_or_close | done
        while True:
            i = self.ws(i)
            if i >= n:
                if expect == "done":
                    return
                what = {
                    "value": "a value (after ':' or ',')" if self.stack else "a value",
                    "value_or_close": "an array",
                    "key": "an object (a key was expected after ',')",
                    "key_or_close": "an object",
                    "colon": "an object (a ':' was expected after the key)",
                    "comma_or_close": "an array"
                    if self.stack and self.stack[-1].kind == "["
                    else "an object",
                }[expect]
                self.unterminated(what)
            c = text[i]
            if expect == "done":
                self.stop(
                    "trailing_text",
                    f"text after the complete JSON value: {_quote(text, i)}"
                    + (" (a second JSON value)" if c in "{[" else ""),
                    i,
                    trailing_chars=n - i,
                )
            elif expect in ("value", "value_or_close"):
                if c in "]}":
                    if expect == "value_or_close" and c == "]":
                        self.stack.pop()
                        expect = self.after_value()
                        i += 1
                        continue
                    if self.stack and expect == "value" and self._after_comma(i):
                        self.stop("invalid_json", f"a trailing comma before {c!r}", i)
                    self.stop("invalid_json", f"expected a value, found {_quote(text, i)}", i)
                i, expect = self.value(i)
            elif expect in ("key", "key_or_close"):
                frame = self.stack[-1]
                if c == "}":
                    if expect == "key_or_close":
                        self.stack.pop()
                        expect = self.after_value()
                        i += 1
                        continue
                    self.stop("invalid_json", "a trailing comma before '}'", i)
                if c == '"':
                    end = self.string(i)
                    key = json.decoder.scanstring(text, i + 1)[0]  # type: ignore[attr-defined]
                    frame.key = key
                    if key in frame.keys:
                        self.soft_problem(
                            "duplicate_key",
                            f"the key {json.dumps(key, ensure_ascii=False)!s} appears twice in the object at "
                            f"{self.path_without_key()}; Python's json would keep the last value silently",
                            i,
                            key=key,
                        )
                    frame.keys.add(key)
                    i, expect = end, "colon"
                elif c == "'":
                    self.stop(
                        "invalid_json",
                        f"a single-quoted key {_quote(text, i)}: JSON keys use double quotes",
                        i,
                    )
                elif c == "/":
                    self.comment(i)
                elif _WORD.match(text, i):
                    word = _WORD.match(text, i).group()  # type: ignore[union-attr]
                    self.stop(
                        "invalid_json", f"an unquoted key {word!r}: JSON keys are double-quoted strings", i
                    )
                else:
                    self.stop("invalid_json", f"expected a double-quoted key, found {_quote(text, i)}", i)
            elif expect == "colon":
                if c != ":":
                    self.stop("invalid_json", f"expected ':' after the key, found {_quote(text, i)}", i)
                i, expect = i + 1, "value"
            else:  # comma_or_close
                frame = self.stack[-1]
                closer = _CLOSERS[frame.kind]
                if c == ",":
                    if frame.kind == "[":
                        frame.index += 1
                        expect = "value"
                    else:
                        frame.key = None
                        expect = "key"
                    i += 1
                elif c == closer:
                    self.stack.pop()
                    expect = self.after_value()
                    i += 1
                elif c == "/":
                    self.comment(i)
                elif c in "]}":
                    self.stop(
                        "invalid_json",
                        f"{c!r} closes {'an object' if frame.kind == '{' else 'an array'} "
                        f"opened with {frame.kind!r}",
                        i,
                    )
                else:
                    self.stop("invalid_json", f"expected ',' or {closer!r}, found {_quote(text, i)}", i)

    def _after_comma(self, i: int) -> bool:
        j = i - 1
        while j >= 0 and self.text[j] in _WS:
            j -= 1
        return j >= 0 and self.text[j] == ","

    def path_without_key(self) -> str:
        frame = self.stack[-1]
        key, frame.key = frame.key, None
        try:
            return self.path()
        finally:
            frame.key = key

    def after_value(self) -> str:
        return "comma_or_close" if self.stack else "done"

    def value(self, i: int) -> tuple[int, str]:
        text = self.text
        c = text[i]
        if c in "{[":
            self.stack.append(_Frame(c))
            return i + 1, ("key_or_close" if c == "{" else "value_or_close")
        if c == '"':
            return self.string(i), self.after_value()
        if c == "-" or (c.isdigit() and c.isascii()):
            if text.startswith("-Infinity", i):
                return self.non_finite(i, "-Infinity")
            return self.number(i), self.after_value()
        if c == "'":
            self.stop(
                "invalid_json", f"a single-quoted string {_quote(text, i)}: JSON strings use double quotes", i
            )
        if c == "/":
            self.comment(i)
        word = _WORD.match(text, i)
        if word is not None:
            w = word.group()
            for literal in _LITERALS:
                if text.startswith(literal, i):
                    return i + len(literal), self.after_value()
            for literal in _NON_FINITE:
                if text.startswith(literal, i):
                    return self.non_finite(i, literal)
            if word.end() == self.n and any(lit.startswith(w) for lit in _LITERALS + _NON_FINITE):
                self.unterminated(f"the literal {w!r}")
            hint = ""
            if w in _PYTHON_LITERALS:
                hint = f": Python's {w} is JSON's {_PYTHON_LITERALS[w]}"
            if not self.stack:  # the first word of the output: prose
                self.stop(
                    "no_json_start",
                    f"the text starts with {_quote(text, i)}, which cannot start a JSON value{hint}",
                    i,
                )
            self.stop("invalid_json", f"expected a value, found the word {w!r}{hint}", i)
        self.stop("invalid_json", f"expected a value, found {_quote(text, i)}", i)
        raise AssertionError("unreachable")  # pragma: no cover

    def non_finite(self, i: int, literal: str) -> tuple[int, str]:
        self.soft_problem(
            "non_finite_number",
            f"{literal} is not a JSON number (Python's json accepts it; strict parsers do not)",
            i,
            value=literal,
        )
        return i + len(literal), self.after_value()

    def number(self, i: int) -> int:
        text = self.text
        loose = _NUMBER_LOOSE.match(text, i)
        token = loose.group() if loose else text[i]
        strict = _NUMBER.match(text, i)
        if strict is not None and strict.end() == i + len(token):
            return strict.end()
        if i + len(token) == self.n and _NUMBER_PREFIX.match(token):
            self.unterminated(f"the number {token!r}")
        if "-Infinity".startswith(text[i:]):
            self.unterminated(f"the literal {text[i:]!r}")
        after = text[i + len(token) : i + len(token) + 1]
        if not self.stack and (token == "-" or token.endswith(".")) and after in (" ", "\t"):
            # "- item" or "1. First": a Markdown list, i.e. prose
            self.stop(
                "no_json_start",
                f"the text starts with {_quote(text, i)}, which cannot start a JSON value (a Markdown list?)",
                i,
            )
        if (
            strict is not None
            and token.startswith(("0", "-0"))
            and len(strict.group()) < len(token)
            and token[len(strict.group())].isdigit()
        ):
            self.stop("invalid_json", f"the number {token!r} has a leading zero", i)
        self.stop("invalid_json", f"malformed number {token[:40]!r}", i)
        raise AssertionError("unreachable")  # pragma: no cover

    def string(self, i: int) -> int:
        """Return the offset after the closing quote of the string opening at ``i``."""
        text, n = self.text, self.n
        j = i + 1
        while True:
            j = _STR_PLAIN.match(text, j).end()  # type: ignore[union-attr]
            if j >= n:
                self.unterminated("a string", opened_at=i)
            c = text[j]
            if c == '"':
                return j + 1
            if c == "\\":
                if j + 1 >= n:
                    self.unterminated("a string escape", opened_at=i)
                e = text[j + 1]
                if e in _ESCAPES:
                    j += 2
                    continue
                if e == "u":
                    hexes = text[j + 2 : j + 6]
                    if _HEX4.match(hexes):
                        j += 6
                        continue
                    if j + 2 + len(hexes) == n and all(h in "0123456789abcdefABCDEF" for h in hexes):
                        self.unterminated("a \\u escape", opened_at=i)
                    self.stop("invalid_json", f"invalid \\u escape {text[j : j + 6]!r} in a string", j)
                self.stop("invalid_json", f"invalid escape {text[j : j + 2]!r} in a string", j)
            # a raw control character
            name = {"\n": "newline", "\r": "carriage return", "\t": "tab"}.get(c, "control character")
            self.stop(
                "invalid_json",
                f"a raw {name} (U+{ord(c):04X}) inside a string; escape it (e.g. \\n)",
                j,
                char=f"U+{ord(c):04X}",
            )

    def comment(self, i: int) -> None:
        kind = (
            "a // comment"
            if self.text.startswith("//", i)
            else "a /* */ comment"
            if self.text.startswith("/*", i)
            else "a '/'"
        )
        self.stop("invalid_json", f"{kind}: JSON has no comments", i)


def _classify(text: str, stop_reason: str | None, exc: BaseException) -> JsonProblem:
    problem = _Scanner(text, stop_reason).scan()
    if problem is not None:
        return problem
    # The structure is fine, yet json refused it: nesting beyond the recursion limit, an
    # integer beyond Python's digit limit...
    if isinstance(exc, RecursionError):
        return JsonProblem("invalid_json", "nested too deeply for Python's json to parse", None)
    return JsonProblem("invalid_json", f"rejected by json: {str(exc)[:200]}", None)


# --------------------------------------------------------------------------- small helpers


def _snippet(text: str, offset: int, width: int = 40) -> str:
    return text[offset : offset + width]


def _quote(text: str, offset: int, width: int = 20) -> str:
    piece = text[offset : offset + width]
    return repr(piece + ("…" if len(text) > offset + width else ""))


def _first_of(text: str, chars: str, start: int) -> int | None:
    hits = [pos for pos in (text.find(ch, start) for ch in chars) if pos >= 0]
    return min(hits) if hits else None
