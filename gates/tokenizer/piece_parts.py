"""Parts of the piece encoder: literal matching of added tokens, and post-processor affixes."""

from __future__ import annotations

import re
from typing import Any


class Matcher:
    """Leftmost-longest matching of literal strings, what ``tokenizers``' Aho-Corasick split does.

    One regex built as a trie of the strings (``[(?:INST\\]|/INST\\]|control_(?:1(?:2|3)...))``):
    the search stops at the leftmost position where one string starts, the trie's greedy optional
    groups take the longest string there, and the next search starts after it.
    """

    def __init__(self, contents: list[str]) -> None:
        trie: dict[str, Any] = {}
        for content in set(contents):
            node = trie
            for char in content:
                node = node.setdefault(char, {})
            node[""] = {}  # a string ends here
        self.pattern = re.compile(trie_regex(trie))

    def matches(self, text: str) -> list[tuple[int, str]]:
        return [(hit.start(), hit.group()) for hit in self.pattern.finditer(text)]


def trie_regex(node: dict[str, Any]) -> str:
    branches = [re.escape(char) + trie_regex(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" in node:  # a string may end here: the longer ones first (greedy), else stop here
        return ("(?:" + body + ")?") if len(branches) > 1 or len(body) > 1 else body + "?"
    return body


def build_matcher(contents: list[str]) -> Matcher | None:
    return Matcher(contents) if contents else None


def affixes(processor: Any) -> tuple[list[int], list[int]] | None:
    """The ids a post-processor puts before and after one sequence, or ``None`` when unknown."""
    if processor is None:
        return [], []
    kind = processor.get("type")
    if kind == "ByteLevel":
        return [], []
    if kind == "Sequence":
        prefix: list[int] = []
        suffix: list[int] = []
        for step in processor.get("processors") or ():
            found = affixes(step)
            if found is None:
                return None
            prefix, suffix = found[0] + prefix, suffix + found[1]
        return prefix, suffix
    if kind != "TemplateProcessing":
        return None
    specials = processor.get("special_tokens") or {}
    before: list[int] = []
    after: list[int] = []
    seen = False
    for item in processor.get("single") or ():
        if "Sequence" in item:
            if item["Sequence"].get("id") != "A" or seen:
                return None
            seen = True
        elif "SpecialToken" in item:
            name = item["SpecialToken"].get("id")
            ids = (specials.get(name) or {}).get("ids")
            if not isinstance(ids, list):
                return None
            (after if seen else before).extend(int(i) for i in ids)
        else:
            return None
    return (before, after) if seen else None
