"""The slow path of :func:`~sftgate.gates.adapter.json_parse.parse_strict`: why a text is not strict JSON.

An iterative structural scanner (deep nesting cannot blow the stack) that walks a text ``json``
refused and names the first structural problem (``unterminated_json``, ``truncated``,
``trailing_text``, ``invalid_json``, a ``no_json_start`` found late), else the first
``duplicate_key`` or ``non_finite_number``. The rules are described in ``json_parse``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from sftgate.gates.adapter.json_problem import JsonProblem, format_path, quote, snippet

__all__ = ["PYTHON_LITERALS", "WORD", "WS", "Scanner", "classify"]

WS = " \t\n\r"  # the only whitespace JSON allows

_WS_RUN = re.compile(r"[ \t\n\r]*")
_STR_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NUMBER_LOOSE = re.compile(r"[-+0-9.eE]+")
_NUMBER_PREFIX = re.compile(r"-?(?:(?:0|[1-9][0-9]*)(?:\.|\.[0-9]+(?:[eE][+-]?[0-9]*)?|[eE][+-]?[0-9]*)?)?\Z")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_LITERALS = ("true", "false", "null")
_NON_FINITE = ("NaN", "Infinity", "-Infinity")
PYTHON_LITERALS = {"True": "true", "False": "false", "None": "null"}
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


class Scanner:
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
            evidence.setdefault("found", snippet(self.text, offset))
        raise _Stop(JsonProblem(rule, detail, offset, self.path(), evidence))

    def unterminated(self, what: str, opened_at: int | None = None) -> None:
        open_ = "".join(f.kind for f in self.stack)
        closers = "".join(_CLOSERS[k] for k in reversed(open_))
        evidence: dict[str, Any] = {"open": open_[-20:], "tail": snippet(self.text, max(0, self.n - 40))}
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
                    f"text after the complete JSON value: {quote(text, i)}"
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
                    self.stop("invalid_json", f"expected a value, found {quote(text, i)}", i)
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
                        f"a single-quoted key {quote(text, i)}: JSON keys use double quotes",
                        i,
                    )
                elif c == "/":
                    self.comment(i)
                elif WORD.match(text, i):
                    word = WORD.match(text, i).group()  # type: ignore[union-attr]
                    self.stop(
                        "invalid_json", f"an unquoted key {word!r}: JSON keys are double-quoted strings", i
                    )
                else:
                    self.stop("invalid_json", f"expected a double-quoted key, found {quote(text, i)}", i)
            elif expect == "colon":
                if c != ":":
                    self.stop("invalid_json", f"expected ':' after the key, found {quote(text, i)}", i)
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
                    self.stop("invalid_json", f"expected ',' or {closer!r}, found {quote(text, i)}", i)

    def _after_comma(self, i: int) -> bool:
        j = i - 1
        while j >= 0 and self.text[j] in WS:
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
                "invalid_json", f"a single-quoted string {quote(text, i)}: JSON strings use double quotes", i
            )
        if c == "/":
            self.comment(i)
        word = WORD.match(text, i)
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
            if w in PYTHON_LITERALS:
                hint = f": Python's {w} is JSON's {PYTHON_LITERALS[w]}"
            if not self.stack:  # the first word of the output: prose
                self.stop(
                    "no_json_start",
                    f"the text starts with {quote(text, i)}, which cannot start a JSON value{hint}",
                    i,
                )
            self.stop("invalid_json", f"expected a value, found the word {w!r}{hint}", i)
        self.stop("invalid_json", f"expected a value, found {quote(text, i)}", i)
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
            if any(c in token for c in ".eE") and math.isinf(float(token)):
                self.soft_problem(
                    "non_finite_number",
                    f"{token[:40]} overflows to infinity: it re-serialises as Infinity, which is not JSON",
                    i,
                    value=token[:40],
                )
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
                f"the text starts with {quote(text, i)}, which cannot start a JSON value (a Markdown list?)",
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


def classify(text: str, stop_reason: str | None, exc: BaseException) -> JsonProblem:
    problem = Scanner(text, stop_reason).scan()
    if problem is not None:
        return problem
    # The structure is fine, yet json refused it: nesting beyond the recursion limit, an
    # integer beyond Python's digit limit...
    if isinstance(exc, RecursionError):
        return JsonProblem("invalid_json", "nested too deeply for Python's json to parse", None)
    return JsonProblem("invalid_json", f"rejected by json: {str(exc)[:200]}", None)
