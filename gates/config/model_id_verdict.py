"""What the diagnosis of one model-ID value concludes (:class:`Diagnosis`), shared by its parts.

:mod:`sftgate.gates.config.model_id_diagnosis` judges a value; local paths are
:mod:`sftgate.gates.config.model_id_local` and the dash form ``org-name`` is
:mod:`sftgate.gates.config.model_id_dash`. Each returns a :class:`Diagnosis`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sftgate.gates.frame.core import Rule, Severity


@dataclass(frozen=True)
class Diagnosis:
    """What :func:`~sftgate.gates.config.model_id_diagnosis.diagnose` concluded about one value.

    ``rule`` is None when the value is fine as it is. ``form`` is ``hub``, ``local``, ``url`` or
    ``invalid``. ``repo_id`` is the Hub ID to look up online (the value, or a suggestion).
    ``confident`` marks a suggestion ``fix-model-ids`` may apply without a human; a suggestion
    that is a guess comes with ``severity`` WARNING (never an error) and its ``candidates`` in
    the evidence.
    """

    rule: Rule | None
    message: str = ""
    suggestion: str | None = None
    confident: bool = False
    form: str = "hub"
    repo_id: str | None = None
    revision: str | None = None
    severity: Severity | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
