"""What a peer job needs from the machine, found offline: HF cache snapshots, the prompt rendering.

:func:`cached_snapshot` finds ``org/name`` at a revision in the local Hugging Face cache by its
folder layout alone (``models--org--name/refs/<branch>`` -> ``snapshots/<commit>``), so no
huggingface_hub import and no network. :func:`prompt_spec` is the
:class:`~sftgate.gates.tokenizer.prompt_spec.PromptSpec` the job trains with: its chat template
(a .jinja file, or inline text) and default system message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sftgate.gates.config.hub_id_grammar import is_commit, is_valid_repo_id
from sftgate.gates.config.peer.jobs import PeerJob, resolve
from sftgate.gates.readers import hf_cache


def cached_snapshot(repo_id: str, revision: str | None = None, env: Any = None) -> Path | None:
    """The cached snapshot folder of ``repo_id`` at ``revision`` (default the ``main`` ref), or None."""
    if not is_valid_repo_id(repo_id, require_namespace=True):
        return None
    root = hf_cache.cache_dir(env) / hf_cache.repo_id_to_folder(repo_id)
    commit = revision if revision and is_commit(revision) else None
    if commit is None:
        ref = root / "refs" / (revision or "main")
        try:
            commit = ref.read_text("utf-8").strip()
        except OSError:
            return None
    snapshot = root / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def template_text(job: PeerJob) -> str | None:
    """The chat template the job names: a .jinja file's text, or the inline template."""
    if job.chat_template is None or not isinstance(job.chat_template.value, str):
        return None
    value = job.chat_template.value
    if "{%" in value or "{{" in value:
        return value
    path, _ = resolve(value, job.search_dirs)
    if path is not None and path.is_file():
        from sftgate.gates.tokenizer.prompt_spec import read_template_file

        return read_template_file(path)
    from sftgate.gates.frame.core import ConfigError

    raise ConfigError(f"{job.location(job.chat_template.key_path)}: the chat template {value!r} does not exist",
                      hint="give a .jinja file (relative to the config's folder) or the template text")


def prompt_spec(job: PeerJob) -> Any:
    from sftgate.gates.tokenizer.prompt_spec import PromptSpec

    return PromptSpec(system=job.system, chat_template=template_text(job))


def template_source(job: PeerJob, folder: Path) -> str:
    """Where the training template comes from, for finding locations."""
    if job.chat_template is not None:
        value = str(job.chat_template.value)
        if "{%" not in value and "{{" not in value:
            path, _ = resolve(value, job.search_dirs)
            if path is not None:
                return os.fspath(path)
        return job.location(job.chat_template.key_path)
    from sftgate.gates.tokenizer.eos import template_location

    return template_location(folder)
