"""Escaping at the one place output is written: values from user input never become structure.

Every writer of sftgate output uses these: the table and the stderr lines (:func:`visible`), the
markdown report and step summary (:func:`md_text`, :func:`md_code`), JUnit XML
(:func:`xml_text`, :func:`xml_attr`), GitHub workflow commands (:func:`gh_data`,
:func:`gh_prop`), and the streams themselves (:class:`GuardedStream`).

The GitHub Actions runner reads every line of a step's stdout and stderr (lines end at ``\\n``
or ``\\r``) and treats one that starts with ``::`` after leading whitespace as a workflow
command (``::error::``, ``::add-mask::``, ``::stop-commands::``), and a line that contains
``##[`` anywhere as an old-style one. So a file name or a config value holding
``"\\n::error::FORGED"`` must never reach a stream as a line of its own:

- :func:`visible` shows control and format characters as escapes (``\\n``, ``\\r``,
  ``\\x1b``, ``\\u202e``), so a value never ends a line, moves the cursor or paints the terminal;
- :class:`GuardedStream` wraps stdout and stderr: a line that would read as a command is
  prefixed with a backslash (``\\::error::...``), and ``##[`` becomes ``#\\u0023[`` (the same
  text to a JSON reader, so a JSON document stays valid and equal), unless sftgate
  writes it through :meth:`GuardedStream.command`, the one door for the annotations it means.

``visible("x\\n::error::FORGED")`` is the one line ``x\\n::error::FORGED``; ``md_text("![t](u)")``
renders as the text ``![t](u)``, not an image.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TextIO

# "##[" starts an old-style command anywhere in a line; "#\u0023[" reads as "##[" in JSON, and as
# plain text to the runner.
OLD_COMMAND_DEFUSED = "#\\u0023["
# Line breaks as str.splitlines knows them: a superset of the runner's \n and \r.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_SPLIT = re.compile(f"([{LINE_BREAKS}])")
_OTHER_BREAKS = re.compile(f"[{LINE_BREAKS[2:]}]")


def visible(text: str, keep: str = "") -> str:
    """``text`` with every non-printable character as its escape (``\\n``, ``\\x1b``, ``\\ud800``).

    Spaces stay (and the characters in ``keep``, e.g. a tab); line breaks, ANSI escapes, bidi
    and zero-width characters, lone surrogates and unassigned code points are shown, never
    interpreted. It is inert as a line of its own too (:func:`defuse_line`): a leading ``::`` gets a
    backslash, ``##[`` is shown as ``#\\u0023[``.
    """
    text = _printable(text, keep)
    return defuse_line(text) if "::" in text or "##[" in text else text


def _printable(text: str, keep: str = "") -> str:
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in keep else repr(ch)[1:-1] for ch in text)


def visible_lines(text: str, keep: str = "\t") -> str:
    """Each line of ``text`` made :func:`visible`, its own line end (``\\n`` or ``\\r\\n``) kept as ``\\n``.

    For showing file content (a diff): a ``\\r`` or another line break inside a line is shown."""
    out = []
    for line in text.split("\n"):
        out.append(visible(line.removesuffix("\r"), keep))
    return "\n".join(out)


def one_line(text: str, limit: int = 500) -> str:
    """:func:`visible`, cut to ``limit`` characters (with ``…``)."""
    out = visible(text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


# --------------------------------------------------------------------------- markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>!|&~$])")
_MD_AUTOLINK = re.compile(r"(?i)(?<=[a-z0-9+.-])(:)(?=//)|(?<=mailto)(:)|(?<=xmpp)(:)|(?<=www)(\.)|(@)")


def md_text(text: str) -> str:
    """Markdown (GFM) text that renders as exactly ``text``, on one line, inside a table cell.

    Control characters are made visible first; the characters that open a markdown or HTML
    construct are backslash-escaped, and autolinks are broken (``https\\://``, ``www\\.``,
    ``a\\@b``), so no value becomes a link, an image, HTML, math, emphasis or a new cell.
    """
    out = _MD_SPECIAL.sub(r"\\\1", _printable(text))
    return _MD_AUTOLINK.sub(lambda m: "\\" + m.group(), out)


def md_code(text: str) -> str:
    """An inline code span holding ``text`` literally (a table cell's ``|`` escaped, as GFM wants)."""
    shown = _printable(text).replace("|", "\\|")
    run = max((len(m) for m in re.findall("`+", shown)), default=0)
    fence = "`" * (run + 1)
    pad = " " if shown.startswith("`") or shown.endswith("`") or not shown.strip() else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


# --------------------------------------------------------------------------- XML

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """XML character data: ``& < >`` as entities, characters XML 1.0 forbids shown as ``\\xNN``."""
    text = _XML_ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def xml_attr(text: str) -> str:
    """A quoted XML attribute value; newlines and tabs kept as character references."""
    text = xml_text(text).replace('"', "&quot;")
    return '"' + text.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;") + '"'


# --------------------------------------------------------------------------- GitHub workflow commands


def gh_data(text: str) -> str:
    """The message part of a workflow command (after ``::``): ``%``, CR and LF percent-encoded."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A").replace("##[", OLD_COMMAND_DEFUSED)
    return _OTHER_BREAKS.sub(lambda m: repr(m.group())[1:-1], text)  # U+2028 and the like: shown


def gh_prop(text: str) -> str:
    """A property value of a workflow command (``file=``, ``title=``): also ``:`` and ``,``."""
    return gh_data(text).replace(":", "%3A").replace(",", "%2C")


def is_command_line(line: str) -> bool:
    """Whether the runner would read ``line`` (one line) as a workflow command."""
    return line.lstrip().startswith("::") or "##[" in line


def defuse_line(line: str) -> str:
    """``line`` (one line) made inert: a leading ``::`` gets a backslash, ``##[`` becomes ``#\\u0023[``."""
    stripped = line.lstrip()
    if stripped.startswith("::"):
        line = line[: len(line) - len(stripped)] + "\\" + stripped
    return line.replace("##[", OLD_COMMAND_DEFUSED)


def defuse(text: str) -> str:
    """Every line of ``text`` made inert (see :func:`defuse_line`); line breaks kept."""
    if "::" not in text and "##[" not in text:
        return text
    parts = _SPLIT.split(text)
    parts[::2] = [defuse_line(p) for p in parts[::2]]
    return "".join(parts)


class GuardedStream:
    """A text stream no line of which can be read as a workflow command sftgate did not mean.

    Every :meth:`write` is scrubbed of secrets (``scrub``, see :mod:`sftgate.gates.frame.secrets`)
    and defused line by line, across writes: a line's leading whitespace and a lone ``:`` are
    held back until the line shows what it is, so ``write(":"); write(":error::x")`` is caught
    too. :meth:`command` writes one command line that sftgate means (its annotations).
    """

    def __init__(self, raw: TextIO, scrub: Callable[[str], str] | None = None) -> None:
        self.raw = raw
        self._scrub = scrub
        self._held = ""
        self._mid = False  # the current line already has content that decided it
        self._at_break = True  # nothing written yet, or the last character written ends a runner line

    def write(self, text: str) -> int:
        if self._scrub is not None:
            text = self._scrub(text)
        out = self._guard(text)
        if out:
            self.raw.write(out)
            self._at_break = out[-1] in "\n\r"
        return len(text)

    def _guard(self, text: str) -> str:
        text, self._held = self._held + text, ""
        parts = _SPLIT.split(text)
        out: list[str] = []
        last = len(parts) - 1
        for i in range(0, len(parts), 2):
            body = parts[i]
            if i == last:  # the unfinished line: hold back what cannot be decided yet
                body, self._held = self._hold(body)
            if not self._mid and body.strip() not in ("", ":"):
                self._mid = True
                stripped = body.lstrip()
                if stripped.startswith("::"):
                    body = body[: len(body) - len(stripped)] + "\\" + stripped
            out.append(body.replace("##[", OLD_COMMAND_DEFUSED))
            if i < last:
                out.append(parts[i + 1])
                self._mid = False
        return "".join(out)

    def _hold(self, body: str) -> tuple[str, str]:
        if not self._mid and body.strip() in ("", ":"):
            return "", body
        tail = len(body) - len(body.rstrip("#"))
        if tail:
            keep = min(tail, 2)
            return body[:-keep], body[-keep:]
        return body, ""

    def command(self, line: str) -> None:
        """Write one workflow command line that sftgate means (``::error file=...::message``)."""
        if self._scrub is not None:
            line = self._scrub(line)
        line = _SPLIT.sub(" ", line)  # one line, whatever the caller built
        prefix = self._held + ("\n" if self._held or not self._at_break else "")
        self._held, self._mid, self._at_break = "", False, True
        self.raw.write(prefix + line + "\n")

    def finish(self) -> None:
        """Write what is held back (only blanks, a lone ``:`` or ``#``) and flush."""
        held, self._held = self._held, ""
        if held:
            self.raw.write(held)
        self.flush()

    def flush(self) -> None:
        flush = getattr(self.raw, "flush", None)
        if flush is not None:
            flush()

    def isatty(self) -> bool:
        return bool(getattr(self.raw, "isatty", lambda: False)())

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, buffer, getvalue, ...
        return getattr(self.raw, name)


def write_command(stream: Any, line: str) -> None:
    """Write the workflow command ``line`` on ``stream``: through its command door if it has one."""
    command = getattr(stream, "command", None)
    if callable(command):
        command(line)
    else:
        stream.write(line + "\n")
