"""The streams and environment a command runs with (no other import: every CLI module may use it)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class IO:
    """The streams and environment a command uses, so tests need no monkeypatching."""

    stdout: TextIO
    stderr: TextIO
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def is_tty(self) -> bool:
        return bool(getattr(self.stderr, "isatty", lambda: False)())

    def progress_enabled(self, quiet: bool = False) -> bool:
        return not quiet and self.is_tty and self.env.get("CI") != "true"

    def say(self, message: str) -> None:
        """Status lines go to stderr, so stdout stays one document for ``--format json``."""
        print(message, file=self.stderr, flush=True)
