"""Publishing a release: upload a release folder to the Hugging Face Hub after the release gate passes.

``publish`` uploads with huggingface_hub only with a token from the environment (``HF_TOKEN``),
which is never printed. Without a token it is a dry run that lists what would be uploaded. What is
listed and uploaded is the manifest and the regular files of the one walk of the folder
(:func:`sftgate.gates.release.release.release_files`), passed to the upload as an explicit list: a
file the release gate did not see is never uploaded.

Example::

    from sftgate.runners.pipeline.publish import publish
    publish("releases/x", "my-org/x-json", env=dict(os.environ))
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sftgate.gates.config import hub_id_grammar
from sftgate.gates.frame.core import SftgateError, UsageError
from sftgate.gates.release import model_card
from sftgate.gates.release import release as release_gate


class PublishRefused(SftgateError):
    """The release gate did not pass, so nothing was uploaded (exit 1)."""

    exit_code = 1


class PublishError(SftgateError):
    """The upload itself failed (bad token, no permission, network) (exit 2)."""

    exit_code = 2


def publish(
    release_dir: str | os.PathLike[str],
    repo_id: str,
    *,
    env: dict[str, str],
    api: Any = None,
    say: Callable[[str], Any] = print,
    private: bool = True,
    profile: str = "transformers",
    require_pinned_revision: bool = True,
    gate_checked: bool = False,
) -> list[str]:
    """Upload ``release_dir`` to the Hub model repo ``repo_id``; returns the files (relative paths).

    The release and model-card gates run first: any error finding raises :class:`PublishRefused` and nothing is
    uploaded. The token comes from ``env["HF_TOKEN"]`` only (no cached login), is passed to the API
    and never printed; without it this is a dry run that lists what would be uploaded. ``api`` is an
    ``HfApi``-like object (``create_repo``, ``upload_folder``), for tests. ``gate_checked=True`` skips
    re-running the release gate when the caller just ran it (``sftgate release``).
    """
    root = Path(release_dir)
    if not hub_id_grammar.is_valid_repo_id(repo_id, require_namespace=True):
        raise UsageError(f"{repo_id!r} is not a Hub repo ID", hint="use namespace/name, e.g. my-org/my-model")
    problems = [] if gate_checked else [
        f for f in (*release_gate.check(model_dir=root, profile=profile, require_pinned_revision=require_pinned_revision),
                    *model_card.check(model_dir=root))
        if f.is_error
    ]
    if problems:
        rules = sorted({f.rule for f in problems})
        raise PublishRefused(
            f"{root}: the release gates failed ({', '.join(rules)}): nothing uploaded",
            hint="`sftgate release DIR` lists every finding",
        )
    files = [release_gate.MANIFEST_NAME, *release_gate.release_files(root)]
    size = sum((root / f).stat().st_size for f in files)
    token = (env.get("HF_TOKEN") or "").strip()
    url = f"https://huggingface.co/{repo_id}"
    if not token:
        say(f"dry run: HF_TOKEN is not set, nothing uploaded. Would upload {len(files)} files "
            f"({_human(size)}) to {url}:")
        for name in files:
            say(f"  {name}")
        return files
    if api is None:
        api = _hf_api(token)
    say(f"uploading {len(files)} files ({_human(size)}) to {url} ({'private' if private else 'public'})")
    try:
        api.create_repo(repo_id, token=token, private=private, exist_ok=True, repo_type="model")
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(root),
            allow_patterns=[glob.escape(name) for name in files],  # exactly the gated files, nothing else
            commit_message=f"sftgate release ({len(files)} files, manifest {release_gate.MANIFEST_NAME})",
            token=token,
            repo_type="model",
        )
    except Exception as exc:  # the hub client's errors: auth, permission, network
        message = str(exc).replace(token, "***").splitlines()[0] if str(exc) else type(exc).__name__
        raise PublishError(
            f"upload to {repo_id} failed: {type(exc).__name__}: {message}",
            hint="check that HF_TOKEN has write access to the namespace",
        ) from None
    commit = getattr(info, "oid", None)
    say(f"uploaded to {url}" + (f" at commit {commit} (pin this revision)" if commit else ""))
    return files


def _hf_api(token: str) -> Any:
    from huggingface_hub import HfApi

    return HfApi(token=token)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
