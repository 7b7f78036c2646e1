"""The streams and environment a command runs with (no other import: every CLI module may use it).

Both streams are :class:`~sftgate.gates.frame.escape.GuardedStream`: what a command writes is
scrubbed of the secrets in ``env`` and no line of it can read as a GitHub workflow command,
whoever built the text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TextIO

from sftgate.gates.frame.escape import GuardedStream, visible
from sftgate.gates.frame.secrets import Scrubber


@dataclass
class IO:
    """The streams and environment a command uses, so tests need no monkeypatching."""

    stdout: TextIO
    stderr: TextIO
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def __post_init__(self) -> None:
        self.scrubber = Scrubber.from_env(self.env)
        if not isinstance(self.stdout, GuardedStream):
            self.stdout = GuardedStream(self.stdout, self.scrubber)  # type: ignore[assignment]
        if not isinstance(self.stderr, GuardedStream):
            self.stderr = GuardedStream(self.stderr, self.scrubber)  # type: ignore[assignment]

    @property
    def is_tty(self) -> bool:
        return bool(getattr(self.stderr, "isatty", lambda: False)())

    def progress_enabled(self, quiet: bool = False) -> bool:
        return not quiet and self.is_tty and self.env.get("CI") != "true"

    def say(self, message: str) -> None:
        """Status lines go to stderr, so stdout stays one document for ``--format json``; one line
        each, a value in them shown :func:`~sftgate.gates.frame.escape.visible`."""
        print(visible(message), file=self.stderr, flush=True)

    def finish(self) -> None:
        """Write what the guarded streams hold back and flush them."""
        for stream in (self.stdout, self.stderr):
            if isinstance(stream, GuardedStream):
                stream.finish()
