"""The one role policy for chat messages: training data (``dataset-schema``) and fixed cases alike.

A role is accepted when it is one of the four standard roles (``system``, ``user``, ``assistant``,
``tool``) or a role the chat template itself defines: real templates have their own
(ChatQA's ``context``, Granite's ``assistant_tool_call`` / ``tool_response``), found by
:func:`template_roles` in the template's role comparisons. Anything else is unknown, with the
standard role it probably means (:data:`ROLE_SYNONYMS`) as the suggestion.

Valid: ``user``; ``context`` with a template that tests ``message['role'] == 'context'``.
Invalid: ``human`` (did you mean ``user``?), ``context`` without such a template.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

STANDARD_ROLES = ("system", "user", "assistant", "tool")

# Role names other tools use, and the role this format calls them.
ROLE_SYNONYMS = {
    "human": "user", "question": "user", "prompter": "user",
    "gpt": "assistant", "bot": "assistant", "model": "assistant", "ai": "assistant", "chatgpt": "assistant",
    "answer": "assistant", "developer": "system", "function": "tool", "ipython": "tool",
}

_QUOTED = r"""(?:'([^'\n]{1,40})'|"([^"\n]{1,40})")"""
_ROLE_REF = r"""\brole(?:['"]\])?"""  # role, message.role, message['role'], message["role"]
_ROLE_PATTERNS = (
    re.compile(_ROLE_REF + r"\s*(?:==|!=)\s*" + _QUOTED),  # message['role'] == 'context'
    re.compile(_QUOTED + r"\s*(?:==|!=)\s*(?:\w+(?:\.|\[['\"]))?role\b"),  # 'context' == message.role
)
_ROLE_IN = re.compile(_ROLE_REF + r"""\s+(?:not\s+)?in\s*[\[(]([^\])]{0,400})[\])]""")  # role in ['a', 'b']
_ANY_QUOTED = re.compile(_QUOTED)


def template_roles(template: str | None) -> frozenset[str]:
    """The roles a chat template compares message roles with (its own roles included)."""
    if not template or "role" not in template:
        return frozenset()
    found: set[str] = set()
    for pattern in _ROLE_PATTERNS:
        for match in pattern.finditer(template):
            found.add(match.group(1) or match.group(2))
    for match in _ROLE_IN.finditer(template):
        for item in _ANY_QUOTED.finditer(match.group(1)):
            found.add(item.group(1) or item.group(2))
    return frozenset(r for r in found if r.strip())


def accepted_roles(template: str | None = None, extra: Iterable[str] = ()) -> frozenset[str]:
    """The standard roles plus those ``template`` defines (and any ``extra``)."""
    return frozenset(STANDARD_ROLES) | template_roles(template) | frozenset(extra)


def role_guess(role: str) -> str | None:
    """The standard role an unknown role probably means (``human`` -> ``user``), or None."""
    return ROLE_SYNONYMS.get(role.strip().lower())


def unknown_role_hint(role: str, accepted: Iterable[str]) -> str:
    """What to say about an unknown role: its likely standard name, and what is accepted."""
    guess = role_guess(role)
    standard = ", ".join(STANDARD_ROLES)
    extra = sorted(set(accepted) - set(STANDARD_ROLES))
    accepted_text = standard + (f", and the template's {', '.join(extra)}" if extra else "")
    return (f"did you mean {guess!r}? " if guess else "") + f"a role is one of {accepted_text}"


def folder_template_text(folder: str | Path | None) -> str | None:
    """The chat template of a tokenizer or model folder, read from its files (no transformers):
    ``chat_template.jinja``, else ``tokenizer_config.json``'s ``chat_template`` (its default)."""
    if folder is None:
        return None
    root = Path(folder)
    jinja = root / "chat_template.jinja"
    try:
        if jinja.is_file():
            return jinja.read_text(encoding="utf-8")
        config = root / "tokenizer_config.json"
        value = json.loads(config.read_text(encoding="utf-8")).get("chat_template") if config.is_file() else None
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None  # unreadable: the tokenizer gates report it; the role policy falls back to the standard roles
    if isinstance(value, list):  # named templates: transformers uses "default"
        value = next((t.get("template") for t in value if isinstance(t, dict) and t.get("name") == "default"), None)
    return value if isinstance(value, str) else None


def roles_from_config(config: Any) -> frozenset[str]:
    """The accepted roles of an sftgate config: the standard roles plus those of every chat template it
    names (``prompt.chat_template``, ``prompt.inference_chat_template``, the tokenizer folder's)."""
    from sftgate.gates.frame.core import GateSkipped, SftgateError
    from sftgate.gates.readers import tokenizer_io

    templates: list[str | None] = []
    for key in ("prompt.chat_template", "prompt.inference_chat_template"):
        path = config.path_of(key)
        if path is not None and path.is_file():
            with contextlib.suppress(OSError, UnicodeDecodeError):
                templates.append(path.read_text(encoding="utf-8"))
    with contextlib.suppress(GateSkipped, SftgateError):  # no tokenizer offline: the tokenizer gates say so
        templates.append(folder_template_text(tokenizer_io.tokenizer_dir_from_config(config)))
    return accepted_roles(extra=(role for t in templates for role in template_roles(t)))
