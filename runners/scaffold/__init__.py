"""``sftgate init DIR``: write a starter project that ``sftgate check`` passes.

:func:`scaffold` never overwrites: when any file it would write exists already, it writes
nothing and raises :class:`~sftgate.gates.frame.core.InputError` naming them. Each file is written atomically.
"""

from __future__ import annotations

from pathlib import Path

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers import atomic
from sftgate.runners.scaffold import starter


def planned_files(dest: str | Path) -> dict[Path, str]:
    """Target path -> text for every file :func:`scaffold` writes into ``dest``."""
    root = Path(dest)
    return {root / rel: text for rel, text in starter.files().items()}


def scaffold(dest: str | Path) -> list[Path]:
    """Write the starter project into ``dest`` (created if needed); return the files written."""
    root = Path(dest)
    if root.exists() and not root.is_dir():
        raise InputError(f"{root}: exists and is not a folder", hint="give a new or empty folder")
    plan = planned_files(root)
    existing = [p for p in plan if p.exists() or p.is_symlink()]
    if existing:
        shown = ", ".join(str(p) for p in existing[:5]) + (f" (+{len(existing) - 5} more)" if len(existing) > 5 else "")
        raise InputError(f"{root}: refusing to overwrite {shown}",
                         hint="choose a new folder, or move those files away first")
    written = []
    for path, text in plan.items():
        atomic.write_text(path, text)
        written.append(path)
    return written
