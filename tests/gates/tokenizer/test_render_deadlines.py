"""One timer for many renders (render_limits.deadlines): the same per-render deadline, not a total one."""

from __future__ import annotations

import signal
import time

import pytest

from sftgate.gates.tokenizer import render_limits
from sftgate.gates.tokenizer.render_limits import TemplateLimit, bounded, deadlines

TEMPLATE = "{{ messages }}"


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.fixture
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(render_limits, "RENDER_SECONDS", 0.5)
    return 0.5


def test_many_short_renders_outlast_one_deadline(short_deadline):
    """Renders of 0.1 s each, 1.5 s together: none is stopped (the deadline is per render)."""
    with deadlines():
        for _ in range(15):
            with bounded(TEMPLATE):
                _spin(0.1)
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0, "the timer is gone after the block"


def test_a_long_render_is_stopped_and_the_next_ones_still_run(short_deadline):
    start = time.monotonic()
    with deadlines():
        with pytest.raises(TemplateLimit), bounded("{# long #}"):
            _spin(30)
        stopped = time.monotonic() - start
        with bounded(TEMPLATE):  # the timer was re-armed for the renders after it
            _spin(0.05)
    assert stopped < 10 * short_deadline


def test_a_second_block_inside_the_first_or_an_outer_timer_changes_nothing(short_deadline):
    with deadlines(), deadlines(), bounded(TEMPLATE):
        _spin(0.05)
    old = signal.signal(signal.SIGALRM, lambda *_: None)
    signal.setitimer(signal.ITIMER_REAL, 100)
    try:
        with deadlines(), bounded(TEMPLATE):  # an outer timer: each render arms its own, as before
            _spin(0.05)
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 50, "the outer timer is kept"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("template", ["{% generation %}{{ 'x' * 10**10 }}{% endgeneration %}",
                                      "{% generation %}{% endgeneration %}{{ 'x' * 10**10 }}"])
def test_screen_reads_generation_blocks(template):
    """transformers' {% generation %} tag is parsed, not a reason to skip the screen (compiling would build it)."""
    with pytest.raises(TemplateLimit):
        render_limits.screen(template)
    render_limits.screen("{% for m in messages %}{% generation %}{{ m['content'] }}{% endgeneration %}{% endfor %}")
