"""Exact, faster token ids for SentencePiece-style BPE tokenizers (``Metaspace`` with ``split: false``).

Mistral's and Llama 2's converted ``tokenizer.json`` pre-tokenize with ``Metaspace(split=False)``:
each stretch of text between two special tokens is ONE word for BPE, so the Rust backend merges
a whole message at a time and its word cache never hits. :class:`PieceEncoder` gives the same ids
word by word, from a cache:

1. the text is cut at its added tokens exactly as ``tokenizers`` does it (leftmost-longest over
   the non-normalized tokens, then over the normalized ones; no normalizer, so both passes look at
   the raw text); every added token is its id;
2. each stretch between them becomes ``" " -> "▁"`` (and a leading ``▁`` where the
   ``prepend_scheme`` asks: ``always``, or ``first`` for a stretch at offset 0), as Metaspace does;
3. BPE of the stretch is the concatenation of BPE of its pieces split before every ``▁``, when
   no merge can join the end of one piece to the start of the next. Such a merge has a right side
   starting with ``▁``; :meth:`PieceEncoder.build` accepts a tokenizer only when every such merge
   has a left side made of ``▁`` alone, which can only sit next to a piece boundary where the text
   has ``▁▁``: a stretch holding ``▁▁`` (two spaces) goes to the model whole, as the backend does;
4. with ``add_special_tokens``, the post-processor's prefix and suffix ids (``TemplateProcessing``).

Anything else (a normalizer, another pre-tokenizer, dropout, strip flags on added tokens, another
post-processor) gives ``None`` at build time and the caller keeps the backend. A built encoder is
also checked against the backend on probe texts (spaces, special tokens, byte fallback) first.
"""

from __future__ import annotations

import json
import re
import weakref
from itertools import accumulate, chain, pairwise
from typing import Any

from sftgate.gates.tokenizer.piece_parts import affixes, build_matcher

CACHE_MAX = 200_000  # words kept (about 30 MB at most); the cache is cleared when full
STRETCHES_MAX = 16_384  # stretches kept (a batch of a few thousand texts)
_BYTE = re.compile(r"<0x[0-9A-F]{2}>")  # a byte fallback token
VERIFY = 512  # the first real texts each encoder also encodes with the backend, to compare

PROBES = (
    "", " ", "  ", "hello", " hello world", "hello  world", "a\n\nb", "\tx\t", "trailing ", "▁lit▁eral ▁▁",
    "<s>[INST] What is 2 + 2?[/INST] 4</s>", "[INST]  two spaces[/INST]", "</s></s>", "é 🙂 ∑ \u200b 日本語",
    "x<s>y</s>z", "[INST][/INST]", "\"{\\\"a\\\": [1, 2]}\"\n", " ", "<unk>", "[control_12] ok",
)


class PieceEncoder:
    """The ids ``backend.encode_batch_fast(texts, add_special_tokens)`` gives, word by word from a cache."""

    def __init__(self, backend: Any, replacement: str, prepend: str, added: list[tuple[str, int, bool]],
                 affixes: tuple[list[int], list[int]] | None) -> None:
        self.model = backend.model
        self.rep = replacement
        self.double = replacement * 2
        self.prepend = prepend  # "always" | "first" | "never"
        self.ids = {content: token_id for content, token_id, _ in added}
        self.passes = [build_matcher([c for c, _, normalized in added if normalized is flag]) for flag in (False, True)]
        self.affixes = affixes  # (prefix, suffix) with add_special_tokens; None: unknown post-processor
        self.vocab: dict[str, int] = {}  # the model's token -> id, for offsets()
        self.strings: dict[int, str] | None = None  # id -> token string, built on first use by offsets()
        self.byte_ids: frozenset[int] = frozenset()
        self.widths: list[int] = []  # id -> characters of its token string
        self.offsets_verified = 0
        self.offsets_broken = False
        self.verified = 0  # real texts compared with the backend so far
        self.broken = False
        self.plain: dict[str, list[int]] = {}  # piece -> ids, for the piece without a leading ``rep``
        self.spaced: dict[str, list[int]] = {}  # r -> ids of ``rep + r``
        # (stretch, at offset 0) -> ids: the prompt, the full text and the turns of one example
        # share their stretches, and a batch encodes all of them
        self.stretches: dict[tuple[str, bool], list[int]] = {}

    @classmethod
    def build(cls, backend: Any) -> PieceEncoder | None:
        """The encoder for ``backend`` (a ``tokenizers.Tokenizer``), or ``None`` when it does not apply."""
        try:
            spec = json.loads(backend.to_str())
        except Exception:
            return None
        pre, model = spec.get("pre_tokenizer") or {}, spec.get("model") or {}
        if (
            spec.get("normalizer") is not None
            or spec.get("truncation") is not None
            or spec.get("padding") is not None
            or pre.get("type") != "Metaspace"
            or pre.get("split") is not False
            or pre.get("prepend_scheme") not in ("always", "first", "never")
            or len(pre.get("replacement") or "") != 1
            or model.get("type") != "BPE"
            or model.get("dropout") not in (None, 0, 0.0)
            or model.get("continuing_subword_prefix")
            or model.get("end_of_word_suffix")
            or model.get("ignore_merges")
        ):
            return None
        rep = pre["replacement"]
        for merge in model.get("merges") or ():
            left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
            if right.startswith(rep) and left.strip(rep):
                return None  # a merge that may join two pieces: only the whole stretch is exact
        added = []
        for token in spec.get("added_tokens") or ():
            if token.get("lstrip") or token.get("rstrip") or token.get("single_word") or not token.get("content"):
                return None
            added.append((token["content"], int(token["id"]), bool(token.get("normalized"))))
        encoder = cls(backend, rep, pre["prepend_scheme"], added, affixes(spec.get("post_processor")))
        encoder.vocab = model.get("vocab") or {}
        return encoder if encoder.agrees(backend) else None

    def agrees(self, backend: Any) -> bool:
        """True when this encoder gives the backend's ids on :data:`PROBES`, with and without special tokens."""
        texts = list(PROBES)
        for special in (False, True):
            if special and self.affixes is None:
                continue
            want = [e.ids for e in backend.encode_batch(texts, add_special_tokens=special)]
            if self.encode_batch(texts, special) != want:
                return False
        return True

    def offsets(self, backend: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """``(ids, character offsets)`` of ``text`` without special tokens, as the backend's
        ``encode(text).offsets`` gives them: each token's span, walked from the token strings (a byte
        fallback token spans its whole character). Compared with the backend on the first
        :data:`VERIFY` texts; the backend itself after any difference."""
        found = None if self.offsets_broken else self._offsets(text)
        if found is None or self.offsets_verified < VERIFY:
            encoding = backend.encode(text, add_special_tokens=False)
            want = (encoding.ids, [tuple(o) for o in encoding.offsets])
            if found is not None and (found[0], found[1]) != want:
                self.offsets_broken = True
            self.offsets_verified += 1
            return want
        return found

    def _offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]] | None:
        if self.strings is None:
            self.strings = {token_id: token for token, token_id in self.vocab.items()}
            self.strings.update({token_id: content for content, token_id in self.ids.items()})
            # a byte fallback token of an ASCII byte is one character; the others make up one together
            ascii_bytes = {i for i, t in self.strings.items() if _BYTE.fullmatch(t) and int(t[3:5], 16) < 0x80}
            self.byte_ids = frozenset(i for i, t in self.strings.items() if _BYTE.fullmatch(t)) - ascii_bytes
            self.widths = [0] * (max(self.strings, default=-1) + 1)
            for token_id, token in self.strings.items():
                self.widths[token_id] = 1 if token_id in ascii_bytes else len(token)
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        for start, segment, token_id in self._segments(text):
            if token_id is not None:
                ids.append(token_id)
                spans.append((start, start + len(segment)))
                continue
            stretch = self._stretch(segment, start == 0)
            shift = 1 if self._prepends(segment, start == 0) else 0
            walked = _walk(stretch, self.strings, self.widths, segment, start, shift, self.byte_ids)
            if walked is None:
                return None
            ids += stretch
            spans += walked
        return ids, spans

    def _prepends(self, segment: str, at_start: bool) -> bool:
        return (self.prepend == "always" or (self.prepend == "first" and at_start)) and not (
            segment.startswith(" ") or segment.startswith(self.rep))

    # ------------------------------------------------------------------ encoding

    def encode_batch(self, texts: list[str], add_special_tokens: bool) -> list[list[int]]:
        return [self.encode(text, add_special_tokens) for text in texts]

    def encode_checked(self, backend: Any, texts: list[str], add_special_tokens: bool) -> list[list[int]] | None:
        """:meth:`encode_batch`, compared with ``backend`` on the first :data:`VERIFY` texts of real data
        too (on top of the probes); ``None`` once they ever differed: the caller uses the backend."""
        if self.broken or (add_special_tokens and self.affixes is None):
            return None
        ids = self.encode_batch(texts, add_special_tokens)
        return ids if self._verified(backend, texts, ids, add_special_tokens) else None

    def encode_groups_checked(self, backend: Any, groups: list[list[str]]) -> list[list[list[int]]] | None:
        """:meth:`encode_group` of each group (no special tokens), checked as :meth:`encode_checked` is."""
        if self.broken:
            return None
        out = [self.encode_group(group) for group in groups]
        flat = [ids for group in out for ids in group]
        return out if self._verified(backend, [text for group in groups for text in group], flat, False) else None

    def _verified(self, backend: Any, texts: list[str], ids: list[list[int]], add_special_tokens: bool) -> bool:
        """While fewer than :data:`VERIFY` real texts were compared: compare these too (``False``, and
        :attr:`broken` from then on, at a difference)."""
        if self.verified < VERIFY:
            head = texts[: VERIFY - self.verified]
            if [e.ids for e in backend.encode_batch_fast(head, add_special_tokens=add_special_tokens)] != ids[: len(head)]:
                self.broken = True
                return False
            self.verified += len(head)
        return True

    def encode_group(self, texts: list[str]) -> list[list[int]]:
        """The ids of ``texts[0]`` and of the texts after it (no special tokens). A later text that is
        ``texts[0]`` cut at the end of one of its segments (an added token, or the stretch before
        one) has the same segments up to there, so its ids are the first ones of ``texts[0]``'s: a
        prompt, or an earlier turn, of the conversation ``texts[0]`` renders."""
        full = texts[0]
        ids: list[int] = []
        ends = {0: 0}  # character offset where a segment ends -> tokens before it
        for start, segment, token_id in self._segments(full):
            if token_id is not None:
                ids.append(token_id)
            else:
                ids += self._stretch(segment, start == 0)
            ends[start + len(segment)] = len(ids)
        out = [ids]
        for text in texts[1:]:
            count = ends.get(len(text)) if full.startswith(text) else None
            out.append(ids[:count] if count is not None else self.encode(text))
        return out

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        ids: list[int] = []
        for start, segment, token_id in self._segments(text):
            if token_id is not None:
                ids.append(token_id)
            else:
                ids += self._stretch(segment, start == 0)
        if add_special_tokens:
            if self.affixes is None:
                raise ValueError("no known post-processor: encode with the backend")
            prefix, suffix = self.affixes
            return [*prefix, *ids, *suffix]
        return ids

    def _segments(self, text: str) -> list[tuple[int, str, int | None]]:
        """``(offset, text, added-token id or None)`` of ``text`` cut at its added tokens (two passes)."""
        parts: list[tuple[int, str, int | None]] = [(0, text, None)]
        for matcher in self.passes:
            if matcher is None:
                continue
            out: list[tuple[int, str, int | None]] = []
            for offset, segment, token_id in parts:
                if token_id is not None:
                    out.append((offset, segment, token_id))
                    continue
                pos = 0
                for start, content in matcher.matches(segment):
                    if start > pos:
                        out.append((offset + pos, segment[pos:start], None))
                    out.append((offset + start, content, self.ids[content]))
                    pos = start + len(content)
                if pos < len(segment):
                    out.append((offset + pos, segment[pos:], None))
            parts = out
        return parts

    def _stretch(self, segment: str, at_start: bool) -> list[int]:
        key = (segment, at_start)
        ids = self.stretches.get(key)
        if ids is None:
            ids = self._encode_stretch(segment, at_start)
            if len(self.stretches) >= STRETCHES_MAX:
                self.stretches.clear()
            self.stretches[key] = ids
        return ids

    def _encode_stretch(self, segment: str, at_start: bool) -> list[int]:
        rep = self.rep
        word = segment.replace(" ", rep)
        if self._prepends(segment, at_start):
            word = rep + word
        if self.double in word:  # a merge may cross the piece boundary here: BPE the stretch whole
            return [t.id for t in self.model.tokenize(word)]
        rest = word.split(rep)  # the pieces: rest[0] and then ``rep + r`` for every later r
        first = rest.pop(0)
        found = list(map(self.spaced.get, rest))
        if None in found:
            found = [f if f is not None else self._piece(r, rep) for f, r in zip(found, rest, strict=True)]
        if first:
            known = self.plain.get(first)
            found.insert(0, known if known is not None else self._piece(first, ""))
        return list(chain.from_iterable(found))

    def _piece(self, piece: str, lead: str) -> list[int]:
        cache = self.spaced if lead else self.plain
        ids = [t.id for t in self.model.tokenize(lead + piece)]
        if len(cache) >= CACHE_MAX:
            cache.clear()
        cache[piece] = ids
        return ids


def _walk(ids: list[int], strings: dict[int, str], lengths: list[int], segment: str, start: int, shift: int,
          byte_ids: frozenset[int]) -> list[tuple[int, int]] | None:
    """The character spans of ``ids`` (a stretch of ``segment`` at offset ``start``, with ``shift``
    prepended ``▁``): a token covers its string; byte fallback tokens (``<0xE2>``...) make up one
    character together and each spans it; the prepended ``▁`` is aligned with the first character,
    as in tokenizers. ``None`` when the strings do not add up to the stretch (an unknown token)."""
    try:
        widths = list(map(lengths.__getitem__, ids))
    except IndexError:  # an id beyond the vocabulary
        return None
    if byte_ids.isdisjoint(ids):  # no byte token of a longer character: every token spans its string
        bounds = list(accumulate(widths, initial=start - shift))
        if bounds[-1] != start + len(segment) or 0 in widths:
            return None
        spans = list(pairwise(bounds))
    else:
        spans = []
        pos, pending = start - shift, 0
        for token_id, width in zip(ids, widths, strict=True):
            if token_id in byte_ids:
                byte = int(strings[token_id][3:5], 16)
                if pending == 0:
                    pending = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
                spans.append((pos, pos + 1))
                pending -= 1
                pos += pending == 0
                continue
            if pending or not width:
                return None
            spans.append((pos, pos + width))
            pos += width
        if pos != start + len(segment) or pending:
            return None
    if shift:
        spans = [(max(a, start), max(b, start + 1)) for a, b in spans[:2]] + spans[2:]
    return spans


_ENCODERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()  # tokenizer -> encoder | False


def piece_encoder(tokenizer: Any, backend: Any) -> PieceEncoder | None:
    """The :class:`PieceEncoder` of ``tokenizer`` (whose Rust backend is ``backend``), built once, or ``None``."""
    try:
        found = _ENCODERS.get(tokenizer)
    except TypeError:  # not weak-referenceable
        return None
    if found is None:
        found = PieceEncoder.build(backend) or False
        _ENCODERS[tokenizer] = found
    return found or None
