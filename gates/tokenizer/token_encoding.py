"""Token ids of rendered texts, exactly as ``tokenizer(texts)`` gives them, and token helpers for reports.

:func:`encode_texts` calls the Rust backend directly where that is exactly what the tokenizer's
own ``__call__`` does; :func:`token_strings`, :func:`first_difference` and :func:`double_bos`
turn ids into evidence for findings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sftgate.gates.tokenizer.piece_encoding import piece_encoder
from sftgate.gates.tokenizer.special_content import encode_marked, is_marked


def encode_texts(tokenizer: Any, texts: Sequence[str], add_special_tokens: bool) -> list[list[int]]:
    """``tokenizer(texts, add_special_tokens=...)["input_ids"]``, batched.

    For a plain tokenizers-backed tokenizer that call is exactly the Rust backend's
    ``encode_batch(texts, add_special_tokens)`` plus Python bookkeeping; :func:`_backend` then
    calls the backend directly (a third faster on 220k records), or for SentencePiece-style BPE
    (Mistral, Llama 2) :mod:`~sftgate.gates.tokenizer.piece_encoding`'s word cache, which gives the
    backend's ids several times faster. Any tokenizer that customises encoding goes through
    ``tokenizer(...)``.
    """
    if not texts:
        return []
    if any(is_marked(t) for t in texts):  # the split-special-tokens rendering (prompt.split_special_tokens)
        return encode_marked(tokenizer, list(texts), add_special_tokens)
    backend = _backend(tokenizer)
    if backend is not None:
        pieces = piece_encoder(tokenizer, backend)  # SentencePiece-style BPE: the same ids, word by word
        found = pieces.encode_checked(backend, list(texts), add_special_tokens) if pieces is not None else None
        if found is not None:
            return found
        return [e.ids for e in backend.encode_batch_fast(list(texts), add_special_tokens=add_special_tokens)]
    out = tokenizer(list(texts), add_special_tokens=add_special_tokens)["input_ids"]
    return [list(ids) for ids in out]


def encode_groups(tokenizer: Any, groups: Sequence[Sequence[str]], add_special_tokens: bool) -> list[list[list[int]]]:
    """:func:`encode_texts` of every text of every group, regrouped. A group is a rendered conversation
    first, then its prompt and turns: for SentencePiece-style BPE those that are a prefix of the
    first text come from its ids (:meth:`~sftgate.gates.tokenizer.piece_encoding.PieceEncoder.encode_group`)."""
    if not add_special_tokens and groups:
        backend = _backend(tokenizer)
        pieces = piece_encoder(tokenizer, backend) if backend is not None else None
        if pieces is not None and not any(is_marked(t) for group in groups for t in group):
            found = pieces.encode_groups_checked(backend, [list(group) for group in groups])
            if found is not None:
                return found
    flat = encode_texts(tokenizer, [text for group in groups for text in group], add_special_tokens)
    out, pos = [], 0
    for group in groups:
        out.append(flat[pos:pos + len(group)])
        pos += len(group)
    return out


def encode_offsets(tokenizer: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """``(input_ids, offset_mapping)`` of ``tokenizer(text, add_special_tokens=False,
    return_offsets_mapping=True)``: from the Rust backend directly where :func:`encode_texts` may.
    Raises what the tokenizer raises (``NotImplementedError`` for a slow tokenizer)."""
    backend = _backend(tokenizer)
    if backend is not None and not is_marked(text):
        pieces = piece_encoder(tokenizer, backend)
        if pieces is not None and not pieces.broken:
            return pieces.offsets(backend, text)
        encoding = backend.encode(text, add_special_tokens=False)
        return encoding.ids, encoding.offsets
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def _backend(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` whose ``encode_batch`` is all ``tokenizer(texts)`` does, or ``None``."""
    try:
        from transformers.tokenization_utils_tokenizers import TokenizersBackend
    except ImportError:  # pragma: no cover - transformers 4
        return None
    backend: Any = getattr(tokenizer, "_tokenizer", None)
    if (
        backend is None
        or not isinstance(tokenizer, TokenizersBackend)
        or type(tokenizer)._encode_plus is not TokenizersBackend._encode_plus
        or type(tokenizer).__call__ is not TokenizersBackend.__call__
        or getattr(tokenizer, "split_special_tokens", False)
        or not hasattr(backend, "encode_batch_fast")
        or backend.truncation is not None
        or backend.padding is not None
        or getattr(backend, "encode_special_tokens", False)
    ):
        return None
    return backend


# --------------------------------------------------------------------------- helpers for reports


def token_strings(tokenizer: Any, ids: Iterable[int]) -> list[str]:
    """Readable token strings for ids (``convert_ids_to_tokens``; unknown ids as ``<id>``)."""
    ids = list(ids)
    try:
        tokens = tokenizer.convert_ids_to_tokens(ids)
    except Exception:
        tokens = [None] * len(ids)
    return [t if isinstance(t, str) else f"<{i}>" for i, t in zip(ids, tokens, strict=False)]


def first_difference(a: Sequence[int], b: Sequence[int]) -> int | None:
    """Index of the first position where ``a`` is not a prefix of ``b`` (``None`` when it is)."""
    if len(a) <= len(b) and list(a) == list(b[:len(a)]):  # the common case, compared in C
        return None
    for index, token in enumerate(a):
        if index >= len(b) or b[index] != token:
            return index
    return None


def double_bos(ids: Sequence[int], bos_id: int | None) -> bool:
    """True when ``ids`` start with BOS twice (a rendered ``<s>`` tokenized again with special tokens)."""
    return bos_id is not None and len(ids) >= 2 and ids[0] == bos_id and ids[1] == bos_id
