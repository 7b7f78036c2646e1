"""The ``--online`` path of the model-ID gate: does a repo exist, is it gated, does a revision exist.

A thin protocol (:class:`HubClient`) over huggingface_hub's ``model_info`` and ``auth_check``
so that tests use :class:`FakeHub` and never the network. ``repo_exists`` would not do: it is
True for a gated repo that the token cannot download; ``model_info`` says whether a repo is
gated and ``auth_check`` whether this token may read it.

``HF_HUB_OFFLINE`` is respected (no request is made), and the token comes from ``HF_TOKEN`` /
``HUGGING_FACE_HUB_TOKEN`` (or huggingface_hub's stored login) and is never printed:
:func:`scrub` removes it, in every form, from any error text before it reaches a report (and the
CLI scrubs everything it writes again, :mod:`sftgate.gates.frame.secrets`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers import textfile

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class RepoStatus:
    """What the Hub says about one model repo (and one revision of it)."""

    exists: bool
    gated: bool = False  # the repo asks users to accept conditions before downloading
    access: bool = True  # this token may download it
    revision_exists: bool | None = None  # None when no revision was asked for
    sha: str | None = None  # the commit the revision (or the default branch) resolves to
    private: bool = False


class HubUnavailable(Exception):
    """The Hub could not be asked (offline, no huggingface_hub, network error); not a verdict."""


class HubClient(Protocol):
    def lookup(self, repo_id: str, revision: str | None = None) -> RepoStatus: ...


def is_offline(env: Mapping[str, str]) -> bool:
    return env.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def token_from_env(env: Mapping[str, str]) -> str | None:
    return env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN") or None


def scrub(text: str, env: Mapping[str, str]) -> str:
    """``text`` with every form of every token of ``env`` (raw, stripped, repr, URL-quoted...) and
    anything shaped like an HF token replaced by ``***`` (:class:`~sftgate.gates.frame.secrets.Scrubber`)."""
    from sftgate.gates.frame.secrets import Scrubber

    return Scrubber.from_env(env).scrub(text)


class HfHubClient:
    """The real client: huggingface_hub ``HfApi`` (imported when first used)."""

    def __init__(self, env: Mapping[str, str], *, api: Any = None) -> None:
        self.env = env
        self.token = token_from_env(env)
        self._api = api

    @property
    def api(self) -> Any:
        if self._api is None:
            try:
                from huggingface_hub import HfApi
            except ImportError:
                raise HubUnavailable(
                    "huggingface_hub is not installed (pip install 'sftgate[train]')"
                ) from None
            self._api = HfApi()
        return self._api

    def lookup(self, repo_id: str, revision: str | None = None) -> RepoStatus:
        api = self.api
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

        try:
            info = api.model_info(repo_id, revision=revision, token=self.token)
        except RevisionNotFoundError:
            return RepoStatus(exists=True, revision_exists=False)
        except GatedRepoError:
            return RepoStatus(exists=True, gated=True, access=False)
        except RepositoryNotFoundError:
            return RepoStatus(exists=False)
        except Exception as exc:  # network, 5xx, rate limits: the Hub could not be asked
            raise HubUnavailable(scrub(f"{type(exc).__name__}: {exc}", self.env)) from None
        gated = bool(getattr(info, "gated", False))
        access = True
        if gated:
            try:
                api.auth_check(repo_id, token=self.token)
            except (GatedRepoError, RepositoryNotFoundError):
                access = False
            except Exception as exc:
                raise HubUnavailable(scrub(f"{type(exc).__name__}: {exc}", self.env)) from None
        return RepoStatus(
            exists=True,
            gated=gated,
            access=access,
            revision_exists=True if revision else None,
            sha=getattr(info, "sha", None),
            private=bool(getattr(info, "private", False)),
        )


class FakeHub:
    """An in-memory Hub for tests: ``{repo_id: {"sha", "gated", "access", "revisions", "private"}}``.

    ``revisions`` maps branch and tag names to commits; any listed commit is a revision too.
    A repo ID listed under ``"unavailable"`` raises :class:`HubUnavailable` (a network error).
    """

    def __init__(self, repos: Mapping[str, Mapping[str, Any]], *, unavailable: tuple[str, ...] = ()) -> None:
        self.repos = dict(repos)
        self.unavailable = set(unavailable)
        self.calls: list[tuple[str, str | None]] = []

    @classmethod
    def from_file(cls, path: str | Path) -> FakeHub:
        text = textfile.read_text(path, expected="a fake Hub JSON file")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{path}: cannot read the fake Hub ({exc})") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: the fake Hub must be a JSON object", hint='{"repos": {"org/name": {...}}}')
        return cls(data.get("repos", {}), unavailable=tuple(data.get("unavailable", ())))

    def lookup(self, repo_id: str, revision: str | None = None) -> RepoStatus:
        self.calls.append((repo_id, revision))
        if repo_id in self.unavailable:
            raise HubUnavailable("ConnectionError: the Hub did not answer")
        repo = self.repos.get(repo_id)
        if repo is None:
            return RepoStatus(exists=False)
        gated = bool(repo.get("gated", False))
        access = bool(repo.get("access", not gated))
        if gated and not access:
            return RepoStatus(exists=True, gated=True, access=False)
        revisions: dict[str, str] = dict(repo.get("revisions", {}))
        sha = repo.get("sha")
        if sha:
            revisions.setdefault("main", sha)
        if revision is None:
            return RepoStatus(exists=True, gated=gated, access=access, sha=revisions.get("main"))
        commits = set(revisions.values())
        if revision in revisions:
            return RepoStatus(exists=True, gated=gated, access=access, revision_exists=True, sha=revisions[revision])
        if revision in commits:
            return RepoStatus(exists=True, gated=gated, access=access, revision_exists=True, sha=revision)
        return RepoStatus(exists=True, gated=gated, access=access, revision_exists=False)


def make_client(env: Mapping[str, str]) -> HubClient:
    """The client ``--online`` uses; raises :class:`HubUnavailable` when offline is requested."""
    if is_offline(env):
        raise HubUnavailable("HF_HUB_OFFLINE is set, so the Hub was not asked")
    return HfHubClient(env)
