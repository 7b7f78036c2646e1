"""The local Hugging Face cache: which model repos are there, found offline.

The hub cache keeps one folder per repo, ``models--{org}--{name}`` (``--`` cannot occur inside
a Hub ID, so the split is unambiguous). Its location follows huggingface_hub: ``HF_HUB_CACHE``,
else ``HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``.
The model-ID gate uses it to resolve a dash-separated name (``my-team-my-model``) that no table
knows: if ``models--my-team--my-model`` is cached, the slash form is ``my-team/my-model``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

_FOLDER = re.compile(
    r"""
    \A
    models--                    # the repo type: only model repos
    (?:(?P<org>[^/\\]+?)--)?    # the organisation, when there is one (legacy IDs have none)
    (?P<name>[^/\\]+)           # the repo name
    \Z
    """,
    re.VERBOSE,
)


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The hub cache folder, resolved from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(key):
            return Path(os.path.expanduser(env[key]))
    if env.get("HF_HOME"):
        return Path(os.path.expanduser(env["HF_HOME"])) / "hub"
    if env.get("XDG_CACHE_HOME"):
        return Path(os.path.expanduser(env["XDG_CACHE_HOME"])) / "huggingface" / "hub"
    return Path(os.path.expanduser("~/.cache/huggingface/hub"))


def folder_to_repo_id(name: str) -> str | None:
    """``models--mistralai--Mistral-7B-v0.1`` -> ``mistralai/Mistral-7B-v0.1``; None otherwise."""
    match = _FOLDER.match(name)
    if match is None:
        return None
    org, repo = match.group("org"), match.group("name")
    if "--" in repo or not repo:
        return None
    return f"{org}/{repo}" if org else repo


def repo_id_to_folder(repo_id: str) -> str:
    """``org/name`` -> ``models--org--name`` (the cache folder of a model repo)."""
    return "models--" + repo_id.replace("/", "--")


def cached_model_ids(cache: Path | None = None, *, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The model repo IDs in the cache, sorted; empty when there is no (readable) cache."""
    root = cache if cache is not None else cache_dir(env)
    try:
        names = [entry.name for entry in os.scandir(root) if entry.is_dir()]
    except OSError:
        return ()
    return tuple(sorted({rid for rid in map(folder_to_repo_id, names) if rid}))


def snapshot_revision(path: Path) -> tuple[str, str | None] | None:
    """For a path inside the cache (``.../models--org--name[/snapshots/<sha>]``): the repo ID
    and the snapshot's commit, else None. Lets a missing cache path suggest the Hub ID."""
    parts = path.parts
    for i in range(len(parts) - 1, -1, -1):
        repo_id = folder_to_repo_id(parts[i])
        if repo_id is None:
            continue
        rest = parts[i + 1 :]
        sha = rest[1] if len(rest) >= 2 and rest[0] == "snapshots" else None
        return repo_id, sha
    return None
