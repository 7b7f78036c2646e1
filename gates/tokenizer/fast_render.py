"""The fast path of chat-template rendering: transformers' compiled template, without the per-call machinery.

:func:`chat_renderer` gives a :class:`ChatRenderer` for a tokenizer and template only when it
reproduced ``apply_chat_template`` on probe conversations; ``None`` sends the caller
(:func:`sftgate.gates.tokenizer.template_rendering.apply_template`) to ``apply_chat_template`` itself.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from sftgate.gates.tokenizer.content_flow import content_is_pasted
from sftgate.gates.tokenizer.prompt_spec import PROBE_ASSISTANT, PROBE_SYSTEM, PROBE_USER, PROBE_USER_2
from sftgate.gates.tokenizer.render_limits import StepBudget, TemplateLimit, bounded_text, checked_binop
from sftgate.gates.tokenizer.template_skeleton import Skeletons

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
# reproduced ``apply_chat_template`` on probe conversations. Where the template only pastes
# message contents (content_flow), conversations of one shape share one render (template_skeleton).

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
            intercepted_binops = frozenset({"*", "**"})  # checked by render_limits.checked_binop

            def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
                checked_binop(operator, left, right)
                return super().call_binop(context, operator, left, right)

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

    def __init__(self, compiled: Any, plain: Any, alias: Any, reasoning: tuple[str, ...],
                 budget: StepBudget | None = None, pasted: bool = False) -> None:
        self.compiled = compiled
        self._budget = budget  # the template's range(), bounded (sftgate.gates.tokenizer.render_limits)
        self._plain = plain
        self._alias = alias
        self._reasoning = frozenset(reasoning)
        self._specials: tuple[dict[str, Any], dict[str, Any] | None] | None = None
        self._globals = dict(compiled.globals)  # flattened once (transformers sets them at compile time)
        self._skeletons = Skeletons(self._render_compiled) if pasted else None

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
        budget = None
        if memo is not None:
            try:
                fast_env = env.overlay()  # every setting, filter, global and extension of transformers'
                fast_env.__class__ = memo
                budget = StepBudget()
                fast_env.globals = {**env.globals, "range": budget.range}  # overlay shares the dict: copy it
                compiled = fast_env.from_string(template)
            except Exception:
                compiled, budget = ctu._compile_jinja_template(template), None
        return cls(compiled, plain, alias, reasoning, budget, pasted=content_is_pasted(env, template))

    def _variables(self, specials: dict[str, Any]) -> dict[str, Any] | None:
        cached = self._specials
        if cached is not None and cached[0] == specials:
            return cached[1]
        variables = self._plain(dict(specials))
        if not _CALL_KEYS.isdisjoint(variables):
            variables = None
        self._specials = (dict(specials), variables)
        if self._skeletons is not None:
            self._skeletons.clear()  # skeletons hold the special tokens and template variables they were made with
        return variables  # type: ignore[no-any-return]

    def render(
        self, messages: Sequence[Any], add_generation_prompt: bool, specials: dict[str, Any],
        template_kwargs: dict[str, Any] | None = None,
    ) -> str | None:
        """``apply_chat_template(messages, tokenize=False, ..., **template_kwargs)``'s text, or ``None``
        for the slow path (template kwargs override special tokens, as in transformers)."""
        if not messages:
            return None
        if template_kwargs:
            specials = {**specials, **template_kwargs}
        chat: list[dict[str, Any]] = list(messages)
        simple = clean = True
        reasoning = self._reasoning
        for message in messages:
            if type(message) is not dict:
                return None
            for key, value in message.items():
                if type(value) is not str or type(key) is not str or key in reasoning:
                    clean = False
                    simple = simple and value is None  # a None is dropped; anything else is converted
        if not clean:  # transformers drops the keys whose value is None: copies without them
            chat = [{k: v for k, v in message.items() if v is not None} for message in messages]
        # The sandbox is immutable (a template cannot change a message), so clean messages go as they are.
        if not simple:  # nested content, numbers, reasoning: transformers' own conversion
            try:
                chat = self._alias(self._plain(chat))
            except Exception:
                return None
            if not all(isinstance(m, dict) for m in chat):
                return None
        variables = self._variables(specials)
        if variables is None:  # a key transformers' own call passes too: it raises TypeError, the slow path
            return None
        if simple and clean and self._skeletons is not None:
            return self._skeletons.render(chat, add_generation_prompt)
        return self._render_compiled(chat, add_generation_prompt)

    def _render_compiled(self, chat: Sequence[Any], add_generation_prompt: bool) -> str | None:
        """The compiled template's text for ``chat`` with the current variables (``None``: an error)."""
        compiled = self.compiled
        env = compiled.environment
        # Template.render(...) is new_context(dict(globals, **vars)) + concat(root_render_func(context));
        # the globals are a ChainMap that costs more to copy than the template takes to render.
        variables = self._specials[1] if self._specials else None  # what render() just computed
        parent = {**self._globals, "messages": chat, "tools": None, "documents": None,
                  "add_generation_prompt": add_generation_prompt, **(variables or {})}
        if self._budget is not None:
            self._budget.reset()
        try:
            context = env.context_class(env, parent, compiled.name, compiled.blocks, globals=self._globals)
            chunks = compiled.root_render_func(context)
            text = bounded_text(chunks) if self._budget is not None else env.concat(chunks)
        except TemplateLimit:  # past a bound: the slow path would only run for ever too
            raise
        except Exception:  # the slow path raises the same error with transformers' message
            return None
        return text if isinstance(text, str) else None


_CALL_KEYS = frozenset({"messages", "tools", "documents", "add_generation_prompt"})

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
            fast = renderer.render(messages, generation, tokenizer.special_tokens_map)  # bounded: first
            try:
                slow = tokenizer.apply_chat_template(
                    messages, chat_template=template, tokenize=False, add_generation_prompt=generation
                )
            except TemplateLimit:
                raise
            except Exception:
                slow = None
            if fast != slow:
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
