"""Which exceptions are the user's input or environment, not a bug: the map to exit code 2.

One table, used by the CLI (:func:`sftgate.runners.cli.main.main`, the one place that turns an
exception into an exit code) and by the gate runner (:func:`sftgate.gates.frame.execute.run_gate`,
for a gate's status ``error``): an :class:`~sftgate.gates.frame.core.SftgateError` is what it says;
an ``OSError`` about a path (no such file, name too long, a symlink loop, permission, a full or
read-only disk), a ``RecursionError`` (input nested too deeply) and Python's 4300-digit integer
limit are the input's or the machine's, exit 2. Anything else is a bug in sftgate, exit 3.
"""

from __future__ import annotations

import errno

from sftgate.gates.frame.core import InputError, OutputError, SftgateError

_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EPIPE, errno.EFBIG}


def user_error(exc: BaseException) -> SftgateError | None:
    """The user error ``exc`` stands for, or None when it is a bug (exit 3)."""
    if isinstance(exc, SftgateError):
        return exc
    if isinstance(exc, BrokenPipeError):
        return OutputError("the output stream was closed (broken pipe)")
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename is not None else ""
        reason = exc.strerror or str(exc) or type(exc).__name__
        if exc.errno in _OUTPUT_ERRNOS:
            return OutputError(f"{where or 'the output (stdout or stderr): '}cannot write ({reason})",
                               hint="free some space, or send the output elsewhere")
        return InputError(f"{where}{reason}", hint=_OS_HINTS.get(exc.errno or 0))
    if isinstance(exc, RuntimeError) and str(exc).startswith("Symlink loop from"):  # Path.resolve before 3.13
        return InputError(f"{str(exc).removeprefix('Symlink loop from ').strip(chr(39))}: a loop of symbolic links",
                          hint=_OS_HINTS[errno.ELOOP])
    if isinstance(exc, RecursionError):
        return InputError("an input is nested too deeply to read (over Python's recursion limit)",
                          hint="flatten the nesting; no config, schema or record needs hundreds of levels")
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return InputError("an input holds an integer of more than 4300 digits (Python's limit)",
                          hint="write such a value as a string")
    return None


def exit_code(exc: BaseException) -> int:
    """2 for the user's input or environment, 3 for a bug."""
    error = user_error(exc)
    return error.exit_code if error is not None else 3


_OS_HINTS = {
    errno.ENAMETOOLONG: "shorten the path (a file name is at most 255 bytes)",
    errno.ELOOP: "a symbolic link points at itself (or a loop of links): fix or remove it",
    errno.EACCES: "check the permissions",
    errno.ENOENT: "check the path (relative paths are from the current folder)",
}
