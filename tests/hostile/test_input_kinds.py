"""Every input-reading command against every hostile file kind: the contract's exit code, never a bug.

A slot is one place a command reads a file (``data TRAIN``, ``data --cases``, ``json-check
--schema``...). Each slot gets each kind of :mod:`tests.hostile.conftest` (missing, folder, empty,
binary, non-UTF-8, UTF-16, NUL bytes, a FIFO nobody writes, a symlink loop, a dangling link,
10^5 nested brackets, a 5000-digit integer, a YAML alias bomb, bad tags and keys, a lone
surrogate, a name too long, a truncated .gz). What a kind must give depends on what the slot
reads: a path that cannot be read is exit 2 everywhere; a document (config, schema) that is not
valid is exit 2; a bad record in a dataset is a finding (exit 1), not an error.
"""

from __future__ import annotations

import pytest

from tests.conftest import FIXTURES, run_cli
from tests.hostile.conftest import BYTES_KINDS, KINDS, SPECIAL_KINDS, assert_no_bug, make_kind

TRAIN = str(FIXTURES / "data" / "clean_prompt_completion.jsonl")
OUTPUTS = str(FIXTURES / "strict_json" / "clean.jsonl")
SCHEMA = str(FIXTURES / "strict_json" / "schema.json")

# slot -> (argv with {X}, suffix of the hostile file, what the slot reads)
SLOTS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "check CONFIG": (("check", "{X}"), ".yaml", "document"),
    "fix-model-ids FILE": (("fix-model-ids", "{X}"), ".yaml", "document"),
    "data --output-schema": (("data", TRAIN, "--output-schema", "{X}"), ".json", "document"),
    "json-check --schema": (("json-check", OUTPUTS, "--schema", "{X}"), ".json", "document"),
    "data TRAIN": (("data", "{X}"), ".jsonl", "dataset"),
    "data --eval": (("data", TRAIN, "--eval", "{X}"), ".jsonl", "dataset"),
    "data --cases": (("data", TRAIN, "--cases", "{X}"), ".jsonl", "cases"),
    "json-check OUTPUTS": (("json-check", "{X}", "--schema", SCHEMA), ".jsonl", "outputs"),
    "triage LOG": (("triage", "{X}"), ".log", "log"),
}

# Kinds that no document reader may accept: exit 2 (besides the paths that cannot be read).
BAD_DOCUMENT = {"binary", "non_utf8", "utf16", "nul", "deep", "huge_int", "huge_int_yaml", "alias_bomb",
                "recursive_alias", "bad_tag", "complex_key"}
# Kinds a fixed-cases file may not hold (a case file is strict: any bad line is exit 2).
BAD_CASES = {"empty", "binary", "non_utf8", "utf16", "nul", "deep", "huge_int", "lone_surrogate",
             "alias_bomb", "recursive_alias", "bad_tag", "complex_key", "null_key", "huge_int_yaml"}


def expected(reads: str, kind: str) -> set[int]:
    """The exit codes the contract allows for ``kind`` in a slot that ``reads``."""
    if kind in SPECIAL_KINDS:
        if kind == "truncated_gz":
            return {2} if reads in ("log", "document", "cases") else {1, 2}
        return {2}
    if reads == "document":
        return {2} if kind in BAD_DOCUMENT else {0, 1, 2}
    if reads == "cases":
        return {2} if kind in BAD_CASES else {0, 1, 2}
    if reads == "log":
        return {0}  # nothing known in it: no finding
    return {0, 1, 2}  # datasets and outputs: bad records are findings


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("slot", list(SLOTS))
def test_hostile_file_kinds(slot: str, kind: str, kinds_dir) -> None:  # type: ignore[no-untyped-def]
    argv, suffix, reads = SLOTS[slot]
    path = make_kind(kinds_dir / slot.replace(" ", "_").replace("-", ""), kind, suffix)
    result = run_cli(*(str(path) if a == "{X}" else a for a in argv), "--format", "json")
    assert_no_bug(result)
    assert result.code in expected(reads, kind), (slot, kind, result.code, result.err[-500:], result.out[-500:])
    if result.code == 2:
        assert result.err.startswith("sftgate: error: ") or '"status": "error"' in result.out


FOLDER_KINDS = ("missing", "a_file", "empty_folder", "symlink_loop", "dangling", "fifo", "name_too_long")


@pytest.mark.parametrize("kind", FOLDER_KINDS)
@pytest.mark.parametrize("command", ["tokenizer", "release"])
def test_hostile_folder_arguments(command: str, kind: str, kinds_dir) -> None:  # type: ignore[no-untyped-def]
    """A command that reads a folder: anything that is not a readable folder is exit 2."""
    root = kinds_dir / f"folders_{command}"
    if kind == "a_file":
        path = make_kind(root, "binary", "")
    elif kind == "empty_folder":
        path = root / "empty_folder"
        path.mkdir(parents=True, exist_ok=True)
    else:
        path = make_kind(root, kind, "")
    result = run_cli(command, str(path))
    assert_no_bug(result)
    allowed = {1, 2} if kind == "empty_folder" else {2}  # an empty folder is readable: missing artifacts
    assert result.code in allowed, (command, kind, result.out[-500:], result.err[-500:])


def test_every_kind_is_covered() -> None:
    assert set(BYTES_KINDS) | set(SPECIAL_KINDS) == set(KINDS)
    assert len(SLOTS) * len(KINDS) >= 180
