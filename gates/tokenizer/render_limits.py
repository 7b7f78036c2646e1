"""Bounds on rendering a chat template: time, loop steps, output size.

A chat template is code from the tokenizer folder. Jinja's sandbox stops it from reaching
Python internals, but not from running for ever (``{% for i in range(99999) %}{% for j in
range(99999) %}``) or building a string of gigabytes (``{{ 'x' * 10**10 }}``). Every render
goes through :func:`bounded`:

- a deadline of :data:`RENDER_SECONDS` per render (a ``SIGALRM`` timer, in the main thread of
  each process; worker processes are main threads too);
- in the fast renderer (:mod:`sftgate.gates.tokenizer.fast_render`, the path almost every
  render takes): ``range`` counts its items against :data:`MAX_STEPS` per render, ``*`` and
  ``**`` refuse results over :data:`MAX_OUTPUT` characters or 4096 bits, and the rendered text is
  at most :data:`MAX_OUTPUT` characters;
- a template that ran past a bound once fails at once afterwards (:func:`bounded` remembers it),
  so a data file of 10,000 records costs one deadline, not 10,000.

Past a bound, :class:`TemplateLimit` (a :class:`~sftgate.gates.tokenizer.prompt_spec.RenderError`)
is raised: the gates report it as the template failing, never hang.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from sftgate.gates.tokenizer.prompt_spec import RenderError

RENDER_SECONDS = 5.0
MAX_STEPS = 1_000_000  # range() items, all loops of one render together
MAX_OUTPUT = 8_000_000  # characters of one rendered text (or of one * result)
MAX_POW_BITS = 4096
_EXHAUSTED: dict[int, str] = {}  # hash of a template -> why it was stopped


class TemplateLimit(RenderError):
    """A chat template ran past a bound (time, loop steps or output size)."""


@contextlib.contextmanager
def bounded(template: str) -> Iterator[None]:
    """Render ``template`` inside the bounds (see the module doc); re-raise a known overrun at once."""
    key = hash(template)
    if key in _EXHAUSTED:
        raise TemplateLimit(_EXHAUSTED[key])
    try:
        with _deadline(RENDER_SECONDS):
            yield
    except TemplateLimit as exc:
        if len(_EXHAUSTED) < 256:
            _EXHAUSTED[key] = str(exc)
        raise


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`TemplateLimit` in this thread after ``seconds`` (main thread only; nests)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    start = time.monotonic()
    previous_left, _ = signal.getitimer(signal.ITIMER_REAL)
    if previous_left and previous_left < seconds:  # an outer deadline comes first: keep it
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise TemplateLimit(f"the chat template ran for more than {seconds:g} s (an endless or huge loop?)")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if previous_left:  # give the outer timer what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(0.001, previous_left - (time.monotonic() - start)))


class StepBudget:
    """``range`` for templates, counting items against :data:`MAX_STEPS` until :meth:`reset`."""

    def __init__(self) -> None:
        self.used = 0

    def reset(self) -> None:
        self.used = 0

    def range(self, *args: int) -> Iterator[int]:
        for i in range(*args):
            self.used += 1
            if self.used > MAX_STEPS:
                raise TemplateLimit(f"the chat template looped more than {MAX_STEPS} times in one render")
            yield i


def checked_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``left * right`` or ``left ** right`` when the result would be too big to build."""
    if operator == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(n, int) and len(seq) * n > MAX_OUTPUT:
                raise TemplateLimit(f"the chat template builds a value of {len(seq) * n} items (over {MAX_OUTPUT})")
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
        if abs(left) > 1 and abs(left).bit_length() * right > MAX_POW_BITS:
            raise TemplateLimit(f"the chat template computes {left} ** {right}: too big")


def bounded_text(chunks: Iterator[str]) -> str:
    """Join rendered chunks, refusing more than :data:`MAX_OUTPUT` characters."""
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise TemplateLimit(f"the chat template rendered more than {MAX_OUTPUT} characters")
        out.append(chunk)
    return "".join(out)
