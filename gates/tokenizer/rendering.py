"""The ONE place prompts are rendered and labels are built: training, eval generation and gates.

The training runner, eval generation (``runners/work/generate.py``) and the tokenizer gates all call
these functions, so the gates check the code path that trains rather than a re-implementation.

Rendering (:func:`render_texts`):

- ``{"messages": [...]}`` renders through the chat template (``PromptSpec.chat_template`` when
  set, else the tokenizer's, where ``chat_template.jinja`` beats ``tokenizer_config.json`` as in
  transformers). A final assistant turn is the completion: the prompt is the conversation
  before it rendered with ``add_generation_prompt=True``; the full text is the whole
  conversation. ``PromptSpec.system`` is prepended as a system message when the conversation
  has none. Texts are tokenized with ``add_special_tokens=False``, as ``apply_chat_template``
  does: the template writes BOS itself.
- ``{"prompt": ..., "completion": ...}`` uses the prompt text as given, through
  ``PromptSpec.template`` (a ``{prompt}`` format; ``{system}`` is replaced by the system
  prompt, which is otherwise prepended with a blank line). The text is tokenized with
  ``add_special_tokens=True`` (the tokenizer adds BOS if it is configured to), and EOS is
  appended to the completion when it does not already end with it (what TRL does).
  ``prompt``/``completion`` given as message lists are treated as ``messages``.

Labels (:func:`encode_example`): the prompt's tokens (``len(encode_prompt(...))``, as TRL does)
are ``-100``; the completion's tokens up to and including its last end-of-turn token
(:func:`end_of_turn_ids`) are supervised; tokens after it (ChatML's trailing newline) are
``-100``. ``max_seq_len`` truncates on the right and sets ``truncated``.

transformers is never imported here: the functions take a tokenizer object.
"""

from __future__ import annotations

import contextlib
import hashlib
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftgate.gates.readers.textfile import read_text

IGNORE_INDEX = -100
COLLATORS = ("completion_only", "mask_pad")

# Distinctive probe texts: plain ASCII words no template contains, so they are easy to find.
PROBE_USER = "Xqzprobeuser alpha"
PROBE_ASSISTANT = "Xqzprobeassistant bravo"
PROBE_USER_2 = "Xqzprobeuser charlie"
PROBE_SYSTEM = "Xqzprobesystem delta"


class RenderError(ValueError):
    """An example that cannot be rendered (unknown format, no chat template, a template error)."""


@dataclass(frozen=True)
class PromptSpec:
    """How prompts are rendered: a system prompt, a ``{prompt}`` template, a chat-template override."""

    system: str | None = None
    template: str | None = None
    chat_template: str | None = None


@dataclass
class Encoded:
    """One training example after the runner's label construction."""

    input_ids: list[int]
    labels: list[int]
    prompt_len: int
    eos_ids: tuple[int, ...]
    truncated: bool

    @property
    def supervised(self) -> int:
        """How many tokens are trained."""
        return sum(1 for label in self.labels if label != IGNORE_INDEX)

    @property
    def last_supervised(self) -> int | None:
        """Index of the last trained token, or ``None`` when nothing is trained."""
        for index in range(len(self.labels) - 1, -1, -1):
            if self.labels[index] != IGNORE_INDEX:
                return index
        return None

    @property
    def eos_position(self) -> int | None:
        """Index of the completion's last end-of-turn token (whatever its label), or ``None``."""
        eos = set(self.eos_ids)
        for index in range(len(self.input_ids) - 1, self.prompt_len - 1, -1):
            if self.input_ids[index] in eos:
                return index
        return None

    @property
    def ends_with_eos(self) -> bool:
        """True when the last trained token is an EOS/end-of-turn token."""
        last = self.last_supervised
        return last is not None and self.input_ids[last] in self.eos_ids


# --------------------------------------------------------------------------- config


def spec_from_config(config: Any) -> PromptSpec:
    """The training :class:`PromptSpec` of an sftgate config (``prompt.*``; files relative to it)."""
    return PromptSpec(
        system=config.get("prompt.system"),
        template=config.get("prompt.template"),
        chat_template=_read_template(config, "prompt.chat_template"),
    )


def inference_spec_from_config(config: Any) -> PromptSpec:
    """The spec the serving side uses: ``prompt.inference_system`` / ``prompt.inference_chat_template``
    when the config sets them (``inference_system: null`` means no system prompt), else training's."""
    train = spec_from_config(config)
    section = config.get("prompt") or {}
    system = section.get("inference_system", train.system)  # an explicit null: no system prompt
    chat = _read_template(config, "prompt.inference_chat_template")
    return PromptSpec(system=system, template=train.template, chat_template=chat if chat is not None else train.chat_template)


def _read_template(config: Any, key: str) -> str | None:
    path = config.require_file(key)
    return None if path is None else read_template_file(path)


def read_template_file(path: str | Path) -> str:
    """Read a ``.jinja`` chat template; a missing or unreadable file is an :class:`InputError`."""
    return read_text(path, expected="a .jinja chat template file", encoding="utf-8")


def template_hash(text: str | None) -> str | None:
    """sha256 of a chat template's text: what a training run records and serving must match."""
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def chat_template_text(tokenizer: Any, spec: PromptSpec) -> str | None:
    """The chat template that renders ``messages`` under ``spec`` (override, else the tokenizer's)."""
    if spec.chat_template is not None:
        return spec.chat_template
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # named templates: transformers uses "default"
        template = template.get("default")
    return template if isinstance(template, str) else None


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Texts:
    """The rendered texts of one example."""

    prompt: str
    full: str | None  # None when the example has no completion (a fixed eval case)
    add_special_tokens: bool
    append_eos: bool
    has_system: bool
    completion: str | None = None


def example_messages(example: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The messages of a chat example (``messages``, or ``prompt``/``completion`` message lists)."""
    messages = example.get("messages")
    if isinstance(messages, list):
        return messages
    prompt = example.get("prompt")
    if isinstance(prompt, list):
        completion = example.get("completion")
        return prompt + (completion if isinstance(completion, list) else [])
    return None


def render_texts(tokenizer: Any, example: dict[str, Any], spec: PromptSpec) -> Texts:
    """Render one example's inference prompt and full training text. Raises :class:`RenderError`."""
    if not isinstance(example, dict):
        raise RenderError(f"an example must be an object, got {type(example).__name__}")
    messages = example_messages(example)
    if messages is not None:
        return _render_messages(tokenizer, messages, spec)
    prompt = example.get("prompt")
    if isinstance(prompt, str):
        completion = example.get("completion")
        if completion is not None and not isinstance(completion, str):
            raise RenderError(f"completion must be a string, got {type(completion).__name__}")
        text = format_prompt(prompt, spec)
        return Texts(
            prompt=text,
            full=None if completion is None else text + completion,
            add_special_tokens=True,
            append_eos=True,
            has_system=spec.system is not None,
            completion=completion,
        )
    raise RenderError("unknown example format: expected 'messages' or 'prompt' (+ 'completion')")


def format_prompt(prompt: str, spec: PromptSpec) -> str:
    """Apply ``spec.template`` (``{prompt}``, ``{system}``) and ``spec.system`` to a plain prompt."""
    template = spec.template
    system = spec.system
    if template is None:
        return prompt if system is None else f"{system}\n\n{prompt}"
    text = template
    if "{system}" in text:
        text = text.replace("{system}", system or "")
    elif system is not None:
        text = f"{system}\n\n{text}"
    return text.replace("{prompt}", prompt)


def _with_system(messages: list[dict[str, Any]], system: str | None) -> list[dict[str, Any]]:
    if system is None or (messages and isinstance(messages[0], dict) and messages[0].get("role") == "system"):
        return messages
    return [{"role": "system", "content": system}, *messages]


def _render_messages(tokenizer: Any, messages: list[dict[str, Any]], spec: PromptSpec) -> Texts:
    if not messages:
        raise RenderError("messages is empty")
    if not all(isinstance(m, dict) for m in messages):
        raise RenderError("every message must be an object with role and content")
    msgs = _with_system(messages, spec.system)
    has_system = msgs[0].get("role") == "system"
    if msgs[-1].get("role") == "assistant":
        prompt_msgs, completion = msgs[:-1], msgs[-1].get("content")
        if not prompt_msgs:
            raise RenderError("the conversation has only an assistant turn, no prompt")
        prompt = apply_template(tokenizer, prompt_msgs, spec, add_generation_prompt=True)
        full = apply_template(tokenizer, msgs, spec, add_generation_prompt=False)
        return Texts(prompt, full, False, False, has_system, completion if isinstance(completion, str) else None)
    prompt = apply_template(tokenizer, msgs, spec, add_generation_prompt=True)
    return Texts(prompt, None, False, False, has_system)


def apply_template(tokenizer: Any, messages: list[dict[str, Any]], spec: PromptSpec, *, add_generation_prompt: bool) -> str:
    """Render ``messages`` to text with the chat template of ``spec`` (transformers' own renderer)."""
    template = chat_template_text(tokenizer, spec)
    if template is None:
        raise RenderError(
            "the tokenizer has no chat template for messages data "
            "(add chat_template.jinja to the tokenizer folder or set prompt.chat_template)"
        )
    renderer = chat_renderer(tokenizer, template)
    if renderer is not None:
        fast = renderer.render(messages, add_generation_prompt, tokenizer.special_tokens_map)
        if fast is not None:
            return fast
    # The slow path: anything the fast renderer does not take, and every error (same messages).
    try:
        text = tokenizer.apply_chat_template(
            messages, chat_template=template, tokenize=False, add_generation_prompt=add_generation_prompt
        )
    except Exception as exc:  # jinja2 TemplateError, raise_exception(), a template bug
        raise RenderError(f"the chat template failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(text, str):
        raise RenderError(f"the chat template returned {type(text).__name__}, not text")
    return text


# --------------------------------------------------------------------------- fast chat rendering
#
# ``apply_chat_template(messages, chat_template=T, tokenize=False, add_generation_prompt=G)`` is,
# for a plain list of dict messages, exactly: drop the keys whose value is None, rebuild the data
# as plain JSON types (``_plain_template_data``), alias reasoning fields, and render transformers'
# compiled template (``_compile_jinja_template(T)``: ImmutableSandboxedEnvironment, trim_blocks,
# lstrip_blocks, raise_exception, strftime_now, tojson, dict, namespace, {% generation %}) with
# ``messages``, ``tools=None``, ``documents=None``, ``add_generation_prompt`` and the tokenizer's
# ``special_tokens_map``. :class:`ChatRenderer` does just that, once per message list, skipping
# the per-call machinery around it. The sandbox's attribute check (a pure function of the
# object's type and the attribute name) is memoised per (type, name). Anything else (another
# tokenizer class, a template named in a dict of templates, messages that are not plain dicts,
# any error) goes through ``apply_chat_template`` itself, and a renderer is only used after it
# reproduced ``apply_chat_template`` on probe conversations.

_SAFE_ATTRIBUTES: dict[tuple[type, str], bool] = {}
_SAFE_ATTRIBUTES_MAX = 4096
_RENDERERS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()  # template -> renderer | False
_CLASSES: dict[type, type] = {}


def _memo_sandbox_class(base: type) -> type | None:
    """``base`` (jinja2's ImmutableSandboxedEnvironment) with ``is_safe_attribute`` memoised, or
    ``None`` when ``base`` is another class (its check may not be a function of type and name)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    if base is not ImmutableSandboxedEnvironment:
        return None
    if base not in _CLASSES:
        check = ImmutableSandboxedEnvironment.is_safe_attribute

        class MemoSandbox(base):  # type: ignore[misc,valid-type]
            def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
                kind = type(obj)
                if type(attr) is not str or getattr(obj, "__class__", None) is not kind:
                    return check(self, obj, attr, value)  # type: ignore[no-any-return]
                key = (kind, attr)
                known = _SAFE_ATTRIBUTES.get(key)
                if known is None:
                    known = check(self, obj, attr, value)
                    if len(_SAFE_ATTRIBUTES) < _SAFE_ATTRIBUTES_MAX:
                        _SAFE_ATTRIBUTES[key] = known
                return known

        _CLASSES[base] = MemoSandbox
    return _CLASSES[base]


class ChatRenderer:
    """One chat template compiled as transformers compiles it, rendered without the per-call machinery."""

    def __init__(self, compiled: Any, plain: Any, alias: Any, reasoning: tuple[str, ...]) -> None:
        self.compiled = compiled
        self._plain = plain
        self._alias = alias
        self._reasoning = frozenset(reasoning)
        self._specials: tuple[dict[str, Any], dict[str, Any]] | None = None

    @classmethod
    def build(cls, template: str) -> ChatRenderer | None:
        """The renderer of ``template``, or ``None`` when transformers' internals are not the expected ones."""
        try:
            import jinja2
            from transformers.utils import chat_template_utils as ctu

            compiled = ctu._compile_jinja_template(template)
            plain, alias = ctu._plain_template_data, ctu._alias_reasoning_fields
            reasoning = tuple(ctu._REASONING_FIELDS)
        except Exception:  # a template error, another transformers: the slow path reports it
            return None
        env = compiled.environment
        memo = _memo_sandbox_class(type(env)) if jinja2.__version__.startswith("3.1.") else None
        if memo is not None:
            try:
                fast_env = env.overlay()  # every setting, filter, global and extension of transformers'
                fast_env.__class__ = memo
                compiled = fast_env.from_string(template)
            except Exception:
                compiled = ctu._compile_jinja_template(template)
        return cls(compiled, plain, alias, reasoning)

    def _variables(self, specials: dict[str, Any]) -> dict[str, Any]:
        cached = self._specials
        if cached is not None and cached[0] == specials:
            return cached[1]
        variables = self._plain(dict(specials))
        self._specials = (dict(specials), variables)
        return variables  # type: ignore[no-any-return]

    def render(self, messages: Sequence[Any], add_generation_prompt: bool, specials: dict[str, Any]) -> str | None:
        """``apply_chat_template(messages, tokenize=False, ...)``'s text, or ``None`` for the slow path."""
        if not messages:
            return None
        chat: list[dict[str, Any]] = []
        simple = True
        for message in messages:
            if type(message) is not dict:
                return None
            copy = {}
            for key, value in message.items():
                if value is None:
                    continue
                if type(key) is not str or type(value) is not str or key in self._reasoning:
                    simple = False
                copy[key] = value
            chat.append(copy)
        if not simple:  # nested content, numbers, reasoning: transformers' own conversion
            try:
                chat = self._alias(self._plain(chat))
            except Exception:
                return None
            if not all(isinstance(m, dict) for m in chat):
                return None
        try:
            text = self.compiled.render(
                messages=chat, tools=None, documents=None, add_generation_prompt=add_generation_prompt,
                **self._variables(specials),
            )
        except Exception:  # the slow path raises the same error with transformers' message
            return None
        return text if isinstance(text, str) else None


_CHECK_CONVERSATIONS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("user", PROBE_USER),),
    (("user", PROBE_USER), ("assistant", PROBE_ASSISTANT)),
    (("system", PROBE_SYSTEM), ("user", PROBE_USER), ("assistant", PROBE_ASSISTANT), ("user", PROBE_USER_2)),
    (("system", PROBE_SYSTEM), ("user", " spaced \n\n"), ("assistant", "{\"a\": [1, 2]}\n"), ("user", "<s> é 🙂")),
)


def _renderer_agrees(tokenizer: Any, renderer: ChatRenderer, template: str) -> bool:
    """True when ``renderer`` gives ``apply_chat_template``'s text (or fails where it fails) on probes."""
    for conversation in _CHECK_CONVERSATIONS:
        messages = [{"role": role, "content": content} for role, content in conversation]
        for generation in (False, True):
            try:
                slow = tokenizer.apply_chat_template(
                    messages, chat_template=template, tokenize=False, add_generation_prompt=generation
                )
            except Exception:
                slow = None
            if renderer.render(messages, generation, tokenizer.special_tokens_map) != slow:
                return False
    return True


def chat_renderer(tokenizer: Any, template: str) -> ChatRenderer | None:
    """The fast renderer of ``template`` for ``tokenizer``, or ``None`` when only ``apply_chat_template`` will do."""
    try:
        cache = _RENDERERS.setdefault(tokenizer, {})
    except TypeError:  # not weak-referenceable: no fast path
        return None
    found = cache.get(template)
    if found is None:
        found = _build_renderer(tokenizer, template) or False
        if len(cache) >= 16:
            cache.clear()
        cache[template] = found
    return found if isinstance(found, ChatRenderer) else None


def _build_renderer(tokenizer: Any, template: str) -> ChatRenderer | None:
    try:
        from transformers.tokenization_utils_base import PreTrainedTokenizerBase
    except ImportError:  # pragma: no cover
        return None
    kind = type(tokenizer)
    if (
        not isinstance(tokenizer, PreTrainedTokenizerBase)
        or kind.apply_chat_template is not PreTrainedTokenizerBase.apply_chat_template
        or kind.get_chat_template is not PreTrainedTokenizerBase.get_chat_template
        or (isinstance(tokenizer.chat_template, dict) and template in tokenizer.chat_template)
        or not isinstance(getattr(tokenizer, "special_tokens_map", None), dict)
    ):
        return None
    renderer = ChatRenderer.build(template)
    if renderer is None or not _renderer_agrees(tokenizer, renderer, template):
        return None
    return renderer


def render_prompt(tokenizer: Any, example: dict[str, Any], spec: PromptSpec) -> str:
    """The inference prompt text, up to and including the generation prompt."""
    return render_texts(tokenizer, example, spec).prompt


def _encode(tokenizer: Any, texts: Sequence[str], add_special_tokens: bool) -> list[list[int]]:
    """``tokenizer(texts, add_special_tokens=...)["input_ids"]``, batched.

    For a plain tokenizers-backed tokenizer that call is exactly the Rust backend's
    ``encode_batch(texts, add_special_tokens)`` plus Python bookkeeping; :func:`_backend` then
    calls the backend directly (a third faster on 220k records). Any tokenizer that customises
    encoding goes through ``tokenizer(...)``.
    """
    if not texts:
        return []
    backend = _backend(tokenizer)
    if backend is not None:
        return [e.ids for e in backend.encode_batch_fast(list(texts), add_special_tokens=add_special_tokens)]
    out = tokenizer(list(texts), add_special_tokens=add_special_tokens)["input_ids"]
    return [list(ids) for ids in out]


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


def encode_prompt(tokenizer: Any, example: dict[str, Any], spec: PromptSpec) -> list[int]:
    """The token ids generation starts from, tokenized exactly as in training."""
    texts = render_texts(tokenizer, example, spec)
    return _encode(tokenizer, [texts.prompt], texts.add_special_tokens)[0]


# --------------------------------------------------------------------------- labels


def encode_example(tokenizer: Any, example: dict[str, Any], spec: PromptSpec, *, max_seq_len: int | None = None) -> Encoded:
    """One training example: input ids and labels (prompt ``-100``; completion and final EOS/EOT trained)."""
    prompt_ids, encoded = encode_many(tokenizer, [example], spec, max_seq_len=max_seq_len)[0]
    del prompt_ids
    return encoded


def encode_many(
    tokenizer: Any,
    examples: Sequence[dict[str, Any]],
    spec: PromptSpec,
    *,
    max_seq_len: int | None = None,
) -> list[tuple[list[int], Encoded]]:
    """Batched :func:`encode_prompt` + :func:`encode_example`: ``[(prompt_ids, encoded), ...]``.

    The same code path as the single-example functions, with the tokenizer called once per
    batch. Every example must have a completion; one that cannot be rendered raises
    :class:`RenderError`.
    """
    rendered = [render_texts(tokenizer, ex, spec) for ex in examples]
    for texts in rendered:
        if texts.full is None:
            raise RenderError("the example has no completion to train on (last turn is not the assistant's)")
    return encode_rendered(tokenizer, rendered, spec, max_seq_len=max_seq_len)


def encode_rendered(
    tokenizer: Any, rendered: Sequence[Texts], spec: PromptSpec, *, max_seq_len: int | None = None
) -> list[tuple[list[int], Encoded]]:
    """Tokenize already rendered texts (all with a completion) and build their labels."""
    eot = tuple(end_of_turn_ids(tokenizer, spec))
    eos_id = getattr(tokenizer, "eos_token_id", None)
    out: list[tuple[list[int], Encoded]] = [None] * len(rendered)  # type: ignore[list-item]
    for special in (False, True):
        index = [i for i, t in enumerate(rendered) if t.add_special_tokens is special]
        if not index:
            continue
        prompts = _encode(tokenizer, [rendered[i].prompt for i in index], special)
        fulls = _encode(tokenizer, [rendered[i].full or "" for i in index], special)
        for i, prompt_ids, full_ids in zip(index, prompts, fulls, strict=True):
            if rendered[i].append_eos and eos_id is not None and (not full_ids or full_ids[-1] != eos_id):
                full_ids.append(eos_id)
            out[i] = (prompt_ids, build_labels(prompt_ids, full_ids, eot, max_seq_len=max_seq_len))
    return out


def build_labels(prompt_ids: list[int], full_ids: list[int], eos_ids: tuple[int, ...], *, max_seq_len: int | None = None) -> Encoded:
    """Labels for ``full_ids`` whose first ``len(prompt_ids)`` tokens are the prompt."""
    prompt_len = len(prompt_ids)
    labels = [IGNORE_INDEX] * min(prompt_len, len(full_ids)) + full_ids[prompt_len:]
    eos = set(eos_ids)
    for index in range(len(full_ids) - 1, prompt_len - 1, -1):
        if full_ids[index] in eos:
            for after in range(index + 1, len(full_ids)):
                labels[after] = IGNORE_INDEX
            break
    truncated = max_seq_len is not None and len(full_ids) > max_seq_len
    if truncated:
        full_ids, labels = full_ids[:max_seq_len], labels[:max_seq_len]
    return Encoded(full_ids, labels, prompt_len, eos_ids, truncated)


def collate(batch: list[Encoded], pad_id: int, *, mask_pad_labels: bool = False) -> dict[str, list[list[int]]]:
    """Right-pad a batch: ``input_ids`` (pad ``pad_id``), ``attention_mask``, ``labels`` (pad ``-100``).

    ``mask_pad_labels=True`` reproduces the classic collator bug (config ``train.collator:
    mask_pad``): every label equal to ``pad_id`` becomes ``-100``, which masks EOS when pad == eos.
    """
    width = max((len(e.input_ids) for e in batch), default=0)
    input_ids, attention, labels = [], [], []
    for enc in batch:
        pad = width - len(enc.input_ids)
        input_ids.append(enc.input_ids + [pad_id] * pad)
        attention.append([1] * len(enc.input_ids) + [0] * pad)
        row = enc.labels + [IGNORE_INDEX] * pad
        if mask_pad_labels:
            row = [IGNORE_INDEX if label == pad_id else label for label in row]
        labels.append(row)
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def pad_id_for(tokenizer: Any) -> int:
    """The pad id training uses: the tokenizer's pad token, else EOS (the common default), else 0."""
    for attr in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, attr, None)
        if isinstance(value, int):
            return value
    return 0


# --------------------------------------------------------------------------- end of turn


@dataclass(frozen=True)
class TurnProbe:
    """What a chat template does around an assistant turn, found by rendering probe conversations."""

    final_tail: str  # text after the final assistant content ([user, assistant])
    final_tail_ids: tuple[int, ...]  # special/added token ids in final_tail
    closing_ids: tuple[int, ...]  # special/added ids between an assistant turn and the next user turn
    generation_header: str  # text between the prompt and the assistant content in the full rendering
    prompt_is_prefix: bool  # the rendered prompt is a prefix of the rendered full conversation
    prompt_is_prefix_with_system: bool
    error: str | None = None


_PROBES: weakref.WeakKeyDictionary[Any, dict[str | None, TurnProbe]] = weakref.WeakKeyDictionary()


def turn_probe(tokenizer: Any, spec: PromptSpec | None = None) -> TurnProbe | None:
    """Probe the chat template of ``spec`` (or the tokenizer's); ``None`` when there is none."""
    spec = spec or PromptSpec()
    template = chat_template_text(tokenizer, spec)
    if template is None:
        return None
    try:
        cache = _PROBES.setdefault(tokenizer, {})
    except TypeError:  # not weak-referenceable: no cache
        cache = {}
    key = template_hash(template)
    if key not in cache:
        cache[key] = _probe(tokenizer, PromptSpec(chat_template=template))
    return cache[key]


def special_ids(tokenizer: Any) -> set[int]:
    """Ids of special and added tokens (control tokens), whitespace-only tokens excluded."""
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    for index, token in decoder.items():
        content = getattr(token, "content", str(token))
        if content.strip():
            ids.add(int(index))
    return ids


def _specials_in(tokenizer: Any, text: str, specials: set[int]) -> tuple[int, ...]:
    if not text:
        return ()
    ids = _encode(tokenizer, [text], False)[0]
    return tuple(i for i in ids if i in specials)


def _probe(tokenizer: Any, spec: PromptSpec) -> TurnProbe:
    user = {"role": "user", "content": PROBE_USER}
    assistant = {"role": "assistant", "content": PROBE_ASSISTANT}
    user2 = {"role": "user", "content": PROBE_USER_2}
    system = {"role": "system", "content": PROBE_SYSTEM}
    try:
        prompt = apply_template(tokenizer, [user], spec, add_generation_prompt=True)
        full = apply_template(tokenizer, [user, assistant], spec, add_generation_prompt=False)
        convo = apply_template(tokenizer, [user, assistant, user2], spec, add_generation_prompt=False)
    except RenderError as exc:
        return TurnProbe("", (), (), "", True, True, error=str(exc))
    try:  # some templates (Gemma's) refuse a system role: then there is nothing to compare
        prompt_sys = apply_template(tokenizer, [system, user], spec, add_generation_prompt=True)
        full_sys = apply_template(tokenizer, [system, user, assistant], spec, add_generation_prompt=False)
    except RenderError:
        prompt_sys = full_sys = ""
    specials = special_ids(tokenizer)
    end = full.rfind(PROBE_ASSISTANT)
    final_tail = full[end + len(PROBE_ASSISTANT):] if end >= 0 else ""
    a_end = convo.find(PROBE_ASSISTANT)
    u2 = convo.find(PROBE_USER_2)
    gap = convo[a_end + len(PROBE_ASSISTANT):u2] if 0 <= a_end < u2 else ""
    header = ""
    if full.startswith(prompt) and end >= len(prompt):
        header = full[len(prompt):end]
    return TurnProbe(
        final_tail=final_tail,
        final_tail_ids=_specials_in(tokenizer, final_tail, specials),
        closing_ids=_specials_in(tokenizer, gap, specials),
        generation_header=header,
        prompt_is_prefix=full.startswith(prompt),
        prompt_is_prefix_with_system=full_sys.startswith(prompt_sys),
    )


def template_end_of_turn_ids(tokenizer: Any, spec: PromptSpec | None = None) -> list[int]:
    """The special tokens the chat template writes after the final assistant turn (no EOS added)."""
    probe = turn_probe(tokenizer, spec)
    if probe is None or probe.error:
        return []
    return list(dict.fromkeys(probe.final_tail_ids))


def end_of_turn_ids(tokenizer: Any, spec: PromptSpec | None = None) -> list[int]:
    """The token ids that end an assistant turn under the chat template, plus EOS.

    Found by rendering a user/assistant probe with the template of ``spec`` (or the
    tokenizer's) and keeping the special tokens after the assistant's text; the tokenizer's
    EOS is always included. The stop ids of ``generation_config.json`` must hold one of them.
    """
    ids = template_end_of_turn_ids(tokenizer, spec)
    eos = getattr(tokenizer, "eos_token_id", None)
    if isinstance(eos, int) and eos not in ids:
        ids.append(eos)
    return ids


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


# --------------------------------------------------------------------------- dataset scan

DETAIL_LIMIT = 50  # per-record details kept for reports (the counts cover every record)


@dataclass(frozen=True, slots=True)
class RecordScan:
    """What the tokenizer gates need to know about one training record, in a few fields."""

    line: int
    kind: str  # "messages" | "prompt_completion"
    has_system: bool
    length: int  # tokens after truncation
    full_length: int  # tokens before truncation
    prefix_diff: int | None  # first position where the prompt ids leave the training ids
    double_bos: bool
    truncated: bool
    ends_with_eos: bool
    final_token: int | None  # id of the last trained token
    eos_masked_mask_pad: bool  # EOS label is -100 after collate(..., mask_pad_labels=True)
    eos_masked_default: bool  # EOS label is -100 after collate(..., mask_pad_labels=False)


@dataclass
class DataScan:
    """Every record of a training file encoded through :func:`encode_rendered` and :func:`collate`."""

    source: str
    records: list[RecordScan] = field(default_factory=list)
    skipped: int = 0  # values that are not JSON objects (the dataset gate reports them)
    unrenderable: int = 0
    unrenderable_samples: list[tuple[int, str]] = field(default_factory=list)
    no_completion: int = 0
    details: dict[int, dict[str, Any]] = field(default_factory=dict)  # line -> prompt_not_prefix detail
    pad_id: int = 0
    eos_ids: tuple[int, ...] = ()
    seconds: float = 0.0
    workers: int = 1

    def count(self, kind: str) -> int:
        return sum(1 for r in self.records if r.kind == kind)

    def metrics(self) -> dict[str, Any]:
        """The scan's own figures, the same in every gate that reads it."""
        total = len(self.records)
        return {
            "records": total,
            "skipped_records": self.skipped + self.unrenderable + self.no_completion,
            "scan_seconds": round(self.seconds, 3),
            "scan_workers": self.workers,
            "records_per_second": round(total / self.seconds, 1) if self.seconds > 0 else None,
        }


_SCANS: dict[tuple[Any, ...], tuple[Any, DataScan]] = {}  # key -> (weakref to the tokenizer, scan)
PARALLEL_MIN_BYTES = 4 * 1024 * 1024  # smaller files are scanned in-process
MAX_WORKERS = 8


def worker_count(path: str | Path, workers: int | None = None) -> int:
    """Processes for a scan: ``workers``, else ``SFTGATE_WORKERS``, else one per CPU (at most 8)
    for files of 4 MB or more; 1 where ``fork`` is not available or CUDA is initialised."""
    import multiprocessing
    import os
    import sys

    # No fork where it is unsafe: no fork start method, or CUDA already initialised in this process.
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if "fork" not in multiprocessing.get_all_start_methods() or (cuda is not None and cuda.is_initialized()):
        return 1
    if workers is None:
        env = os.environ.get("SFTGATE_WORKERS", "").strip()
        if env.isdigit():
            workers = int(env)
        else:
            try:
                size = Path(path).stat().st_size if Path(path).is_file() else 0
            except OSError:
                size = 0
            if size < PARALLEL_MIN_BYTES:
                return 1
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            workers = min(cpus, MAX_WORKERS)
    return max(1, workers)


def scan_data(
    tokenizer: Any,
    path: str | Path,
    spec: PromptSpec,
    *,
    max_seq_len: int | None = None,
    max_records: int | None = None,
    display: str | None = None,
    batch_size: int = 256,
    progress: bool = False,
    workers: int | None = None,
) -> DataScan:
    """Encode every record of ``path`` as training does and collect what the gates check.

    ``max_records`` stops after the first N records of the file. Large files are scanned by
    :func:`worker_count` forked processes (rendering is pure Python); the result is the same.
    Memoised for the last file, so the prompt-alignment and EOS gates share one pass.
    """
    import time

    from sftgate.gates.readers.tokenizer_io import file_signature, iter_records

    key = (id(tokenizer), file_signature(path), spec, max_seq_len, max_records, display)
    cached = _SCANS.get(key)
    if cached is not None and cached[0]() is tokenizer:  # the same object, not a new one at a reused id
        return cached[1]
    start = time.perf_counter()
    scan = DataScan(source=display or str(path), pad_id=pad_id_for(tokenizer), eos_ids=tuple(end_of_turn_ids(tokenizer, spec)))
    stats: dict[str, int] = {}

    def chunks() -> Any:
        chunk: list[tuple[int, dict[str, Any]]] = []
        for seen, (line, record) in enumerate(iter_records(path, stats, display=display, progress=progress)):
            if max_records is not None and seen >= max_records:
                break
            chunk.append((line, record))
            if len(chunk) >= batch_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    n = scan.workers = worker_count(path, workers)
    parts = _scan_parallel(tokenizer, spec, max_seq_len, chunks(), n) if n > 1 else (
        _scan_chunk(tokenizer, spec, max_seq_len, chunk) for chunk in chunks()
    )
    for part in parts:
        scan.records.extend(part.records)
        scan.unrenderable += part.unrenderable
        scan.no_completion += part.no_completion
        room = DETAIL_LIMIT - len(scan.unrenderable_samples)
        scan.unrenderable_samples.extend(part.unrenderable_samples[:max(room, 0)])
        for line, detail in part.details.items():
            if len(scan.details) < DETAIL_LIMIT:
                scan.details[line] = detail
    scan.skipped = stats.get("skipped", 0)
    scan.seconds = time.perf_counter() - start
    _SCANS.clear()
    with contextlib.suppress(TypeError):  # not weak-referenceable: no memo
        _SCANS[key] = (weakref.ref(tokenizer), scan)
    return scan


def _scan_chunk(
    tokenizer: Any, spec: PromptSpec, max_seq_len: int | None, chunk: list[tuple[int, dict[str, Any]]]
) -> DataScan:
    part = DataScan(source="", pad_id=pad_id_for(tokenizer))
    batch: list[tuple[int, str, Texts]] = []
    for line, record in chunk:
        try:
            texts = render_texts(tokenizer, record, spec)
        except RenderError as exc:
            part.unrenderable += 1
            if len(part.unrenderable_samples) < DETAIL_LIMIT:
                part.unrenderable_samples.append((line, str(exc)))
            continue
        if texts.full is None:
            part.no_completion += 1
            continue
        batch.append((line, "prompt_completion" if texts.add_special_tokens else "messages", texts))
    if batch:
        _scan_batch(tokenizer, batch, spec, max_seq_len, part)
    return part


_FORKED: tuple[Any, PromptSpec, int | None] | None = None  # what forked scan workers inherit


def _scan_forked(chunk: list[tuple[int, dict[str, Any]]]) -> DataScan:
    assert _FORKED is not None, "scan worker started without its tokenizer"
    tokenizer, spec, max_seq_len = _FORKED
    return _scan_chunk(tokenizer, spec, max_seq_len, chunk)


def _scan_parallel(tokenizer: Any, spec: PromptSpec, max_seq_len: int | None, chunks: Any, workers: int) -> Any:
    """Scan chunks in ``workers`` forked processes, in order. The workers inherit the tokenizer."""
    import multiprocessing
    import os

    global _FORKED
    _FORKED = (tokenizer, spec, max_seq_len)
    saved = os.environ.get("TOKENIZERS_PARALLELISM")
    # Each worker is one process of N: no Rust thread pool inside, and no fork warning from tokenizers.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            yield from pool.imap(_scan_forked, chunks)
    finally:
        _FORKED = None
        if saved is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = saved


def _scan_batch(
    tokenizer: Any, batch: list[tuple[int, str, Texts]], spec: PromptSpec, max_seq_len: int | None, scan: DataScan
) -> None:
    bos_id = getattr(tokenizer, "bos_token_id", None)
    encoded = encode_rendered(tokenizer, [t for _, _, t in batch], spec, max_seq_len=None)
    for (line, kind, texts), (prompt_ids, full) in zip(batch, encoded, strict=True):
        enc = full
        if max_seq_len is not None and len(full.input_ids) > max_seq_len:
            enc = Encoded(full.input_ids[:max_seq_len], full.labels[:max_seq_len], full.prompt_len, full.eos_ids, True)
        diff = first_difference(prompt_ids, full.input_ids)
        if diff is not None and len(scan.details) < DETAIL_LIMIT:
            scan.details[line] = prefix_detail(tokenizer, prompt_ids, full.input_ids, diff)
        ends = enc.ends_with_eos
        last = enc.last_supervised
        masked_pad = masked_default = False
        if ends and last is not None:
            # What collate([enc], pad_id, mask_pad_labels=...)["labels"][0][last] gives (a trained
            # label, so never -100 by itself): mask_pad masks it when it equals the pad id; the
            # default collator keeps every real label. tests/gates/test_rendering.py checks both.
            masked_pad = enc.labels[last] == scan.pad_id
            masked_default = False
        scan.records.append(RecordScan(
            line=line,
            kind=kind,
            has_system=texts.has_system,
            length=len(enc.input_ids),
            full_length=len(full.input_ids),
            prefix_diff=diff,
            double_bos=double_bos(prompt_ids, bos_id) or double_bos(full.input_ids, bos_id),
            truncated=enc.truncated,
            ends_with_eos=ends,
            final_token=None if last is None else enc.input_ids[last],
            eos_masked_mask_pad=masked_pad,
            eos_masked_default=masked_default,
        ))


def prefix_detail(tokenizer: Any, prompt_ids: Sequence[int], full_ids: Sequence[int], position: int, context: int = 4) -> dict[str, Any]:
    """Evidence for ``prompt_not_prefix``: the position and a few tokens of both sides around it."""
    lo = max(0, position - context)
    return {
        "position": position,
        "prompt_tokens": token_strings(tokenizer, prompt_ids[lo:position + context]),
        "training_tokens": token_strings(tokenizer, full_ids[lo:position + context]),
        "prompt_ids": list(prompt_ids[lo:position + context]),
        "training_ids": list(full_ids[lo:position + context]),
        "from": lo,
    }
