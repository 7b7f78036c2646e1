"""Bounds on rendering a chat template: time, loop steps, output size.

A chat template is code from the tokenizer folder. Jinja's sandbox stops it from reaching
Python internals, but not from running for ever (``{% for i in range(99999) %}{% for j in
range(99999) %}``) or building a string of gigabytes (``{{ 'x' * 10**10 }}``). Every render
goes through :func:`bounded`:

- a deadline of :data:`RENDER_SECONDS` per render (a ``SIGALRM`` timer, in the main thread of
  each process; worker processes are main threads too; a loop over many records takes one timer
  for all its renders with :func:`deadlines`);
- in the fast renderer (:mod:`sftgate.gates.tokenizer.fast_render`, the path almost every
  render takes): ``range`` counts its items against :data:`MAX_STEPS` per render, ``*`` and
  ``**`` refuse results over :data:`MAX_OUTPUT` characters or 4096 bits, and the rendered text is
  at most :data:`MAX_OUTPUT` characters;
- before any of that, :func:`screen` reads the template's syntax tree: Jinja computes constant
  expressions when it compiles (``{{ 'x' * 10**9 }}`` would be built, and written into the
  compiled code, before a render starts), so a constant over the bounds is refused unbuilt;
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
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sftgate.gates.tokenizer.prompt_spec import RenderError

RENDER_SECONDS = 5.0
MAX_STEPS = 1_000_000  # range() items, all loops of one render together
MAX_OUTPUT = 8_000_000  # characters of one rendered text (or of one * result)
MAX_POW_BITS = 4096
T = TypeVar("T")
_EXHAUSTED: dict[int, str] = {}  # hash of a template -> why it was stopped
_SCREENED: set[int] = set()  # templates that passed :func:`screen`


class TemplateLimit(RenderError):
    """A chat template ran past a bound (time, loop steps or output size)."""


@contextlib.contextmanager
def bounded(template: str) -> Iterator[None]:
    """Render ``template`` inside the bounds (see the module doc); re-raise a known overrun at once."""
    key = hash(template)
    if key in _EXHAUSTED:
        raise TemplateLimit(_EXHAUSTED[key])
    try:
        if key not in _SCREENED:
            screen(template)
            _SCREENED.add(key)
        if _WATCH.active and _WATCH.start is None:  # inside deadlines(): one timer for every render
            _WATCH.start = time.monotonic()
            try:
                yield
            finally:
                _WATCH.start = None
        else:
            with _deadline(RENDER_SECONDS):
                yield
    except TemplateLimit as exc:
        _remember(key, exc)
        raise


def _remember(key: int, exc: TemplateLimit) -> None:
    """A template that ran past a bound fails at once from now on (up to 256 of them are kept)."""
    if len(_EXHAUSTED) < 256:
        _EXHAUSTED[key] = str(exc)


def call_bounded(template: str, render: Callable[..., T], *args: Any) -> T:
    """``render(*args)`` inside :func:`bounded`'s bounds; inside :func:`deadlines`, for a template
    already screened, without a context manager per call (a tenth of a short render)."""
    key = hash(template)
    if _WATCH.active and _WATCH.start is None and key in _SCREENED and key not in _EXHAUSTED:
        _WATCH.start = time.monotonic()
        try:
            return render(*args)
        except TemplateLimit as exc:
            _remember(key, exc)
            raise
        finally:
            _WATCH.start = None
    with bounded(template):
        return render(*args)


class _Watch:
    """The render in progress under :func:`deadlines` (main thread only)."""

    active = False
    start: float | None = None  # time.monotonic() when the render in progress started


_WATCH = _Watch()


@contextlib.contextmanager
def deadlines() -> Iterator[None]:
    """The same per-render deadline for many renders, at the cost of one timer: inside, :func:`bounded`
    only notes when each render starts (arming a timer per render costs as much as rendering a short
    conversation). The timer fires at most every :data:`RENDER_SECONDS`; it stops a render that has
    run that long and otherwise re-arms for what that render has left. For loops over many records."""
    if (_WATCH.active or threading.current_thread() is not threading.main_thread()
            or not hasattr(signal, "setitimer") or signal.getitimer(signal.ITIMER_REAL)[0]):
        yield  # nested, not the main thread, or an outer timer: each render arms its own deadline
        return

    def expired(signum: int, frame: Any) -> None:
        started = _WATCH.start
        left = RENDER_SECONDS if started is None else RENDER_SECONDS - (time.monotonic() - started)
        if left <= 0:
            signal.setitimer(signal.ITIMER_REAL, RENDER_SECONDS)  # for the renders after this one
            raise TemplateLimit(f"the chat template ran for more than {RENDER_SECONDS:g} s (an endless or huge loop?)")
        signal.setitimer(signal.ITIMER_REAL, left)

    old = signal.signal(signal.SIGALRM, expired)
    _WATCH.active, _WATCH.start = True, None
    signal.setitimer(signal.ITIMER_REAL, RENDER_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        _WATCH.active, _WATCH.start = False, None


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
    elif (operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0
          and abs(left) > 1 and abs(left).bit_length() * right > MAX_POW_BITS):
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


def screen(template: str) -> None:
    """Refuse a template whose constant expressions are too big to build (see the module doc).

    A syntax error is left to the renderer, which reports it with transformers' message."""
    try:
        from jinja2 import Environment, nodes

        tree = Environment(extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", _generation_tag()]).parse(template)
    except Exception:  # ImportError, a syntax error (the renderer reports it), RecursionError
        return
    for node in tree.find_all((nodes.Mul, nodes.Pow, nodes.Filter, nodes.Call)):
        if isinstance(node, nodes.Mul | nodes.Pow):
            _estimate(node)
        else:
            for arg in [*node.args, *(kw.value for kw in node.kwargs)]:
                size = _estimate(arg)
                if isinstance(size, tuple) and size[0] == "int" and abs(size[1]) > MAX_OUTPUT:
                    raise TemplateLimit(f"the chat template passes the constant {size[1]} to a filter or call: "
                                        f"over {MAX_OUTPUT}")


def _generation_tag() -> type:
    """transformers' ``{% generation %}...{% endgeneration %}`` for the parser: its body, screened like the rest."""
    from jinja2 import nodes
    from jinja2.ext import Extension

    class Generation(Extension):
        tags = frozenset({"generation"})

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            return nodes.Scope(parser.parse_statements(("name:endgeneration",), drop_needle=True)).set_lineno(lineno)

    return Generation


def _estimate(node: Any) -> tuple[str, int] | None:
    """``("int", value)`` or ``("seq", length)`` of a constant expression; None when not constant."""
    from jinja2 import nodes

    if isinstance(node, nodes.Const):
        value = node.value
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return ("int", value)
        return ("seq", len(value)) if isinstance(value, str | tuple | list) else None
    if isinstance(node, nodes.Neg | nodes.Pos):
        inner = _estimate(node.node)
        return ("int", -inner[1] if isinstance(node, nodes.Neg) else inner[1]) if inner and inner[0] == "int" else None
    if isinstance(node, nodes.Tuple | nodes.List):
        return ("seq", len(node.items))
    if not isinstance(node, nodes.Mul | nodes.Pow | nodes.Add):
        return None
    left, right = _estimate(node.left), _estimate(node.right)
    if isinstance(node, nodes.Pow):
        if left and right and left[0] == right[0] == "int" and right[1] > 0:
            checked_binop("**", left[1], right[1])
            return ("int", left[1] ** right[1])
        return None
    if isinstance(node, nodes.Add):
        if left and right and left[0] == right[0]:
            return (left[0], left[1] + right[1])
        return None
    if left and right:
        if left[0] == right[0] == "int":
            if abs(left[1]).bit_length() + abs(right[1]).bit_length() > MAX_POW_BITS:
                raise TemplateLimit("the chat template multiplies constants too big to compute")
            return ("int", left[1] * right[1])
        seq, n = (left, right) if left[0] == "seq" else (right, left)
        if seq[0] == "seq" and n[0] == "int":
            if seq[1] * n[1] > MAX_OUTPUT:
                raise TemplateLimit(f"the chat template builds a constant of {seq[1] * n[1]} items (over {MAX_OUTPUT})")
            return ("seq", seq[1] * max(n[1], 0))
    return None
