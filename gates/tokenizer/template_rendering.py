"""Template rendering: one example's inference prompt and full training text (:func:`render_texts`).

- ``{"messages": [...]}`` renders through the chat template of the spec (:func:`apply_template`,
  on :mod:`sftgate.gates.tokenizer.fast_render` when it agrees with ``apply_chat_template``). A
  final assistant turn is the completion: the prompt is the conversation before it rendered
  with ``add_generation_prompt=True``; the full text is the whole conversation.
  ``PromptSpec.system`` is prepended as a system message when the conversation has none.
- ``{"prompt": ..., "completion": ...}`` uses the prompt text as given, through
  ``PromptSpec.template`` (:func:`format_prompt`). ``prompt``/``completion`` given as message
  lists are treated as ``messages``.

Texts only: tokenization and labels are :mod:`sftgate.gates.tokenizer.label_building`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sftgate.gates.tokenizer.fast_render import chat_renderer
from sftgate.gates.tokenizer.prompt_spec import PromptSpec, RenderError, chat_template_text
from sftgate.gates.tokenizer.render_limits import MAX_OUTPUT, TemplateLimit, call_bounded
from sftgate.gates.tokenizer.special_content import mark_control_strings


@dataclass(frozen=True)
class Texts:
    """The rendered texts of one example."""

    prompt: str
    full: str | None  # None when the example has no completion (a fixed eval case)
    add_special_tokens: bool
    append_eos: bool
    has_system: bool
    completion: str | None = None
    # Earlier assistant turns the labels train (``PromptSpec.turns == "all"``): for each, the
    # conversation before it with the generation prompt, the conversation through it, its text.
    turns: tuple[tuple[str, str, str], ...] = ()


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
    render = _Bound(tokenizer, spec)  # one template lookup for the example's renders
    if msgs[-1].get("role") == "assistant":
        prompt_msgs, completion = msgs[:-1], msgs[-1].get("content")
        if not prompt_msgs:
            raise RenderError("the conversation has only an assistant turn, no prompt")
        prompt = render(prompt_msgs, True)
        full = render(msgs, False)
        return Texts(prompt, full, False, False, has_system, completion if isinstance(completion, str) else None,
                     _earlier_turns(render, msgs) if spec.turns != "last" else ())
    return Texts(render(msgs, True), None, False, False, has_system)


def _earlier_turns(render: _Bound, msgs: list[dict[str, Any]]) -> tuple[tuple[str, str, str], ...]:
    """``(prompt, through, text)`` of every assistant turn before the last (none for one turn)."""
    return tuple(
        (render(msgs[:i], True), render(msgs[:i + 1], False), str(msgs[i].get("content") or ""))
        for i in range(1, len(msgs) - 1) if msgs[i].get("role") == "assistant"
    )


def apply_template(tokenizer: Any, messages: list[dict[str, Any]], spec: PromptSpec, *, add_generation_prompt: bool) -> str:
    """Render ``messages`` to text with the chat template of ``spec`` (transformers' own renderer), with
    ``spec.kwargs`` as template variables; under ``spec.split_special_tokens`` the control-token strings
    of the messages are marked (:func:`mark_control_strings`) so that they encode as text."""
    return _Bound(tokenizer, spec)(messages, add_generation_prompt)


_UNSET = object()


class _Bound:
    """:func:`apply_template` for one tokenizer and spec: the template, its fast renderer and the special
    tokens looked up once for several renders (the prompt, the full text and the turns of one example)."""

    def __init__(self, tokenizer: Any, spec: PromptSpec) -> None:
        template = chat_template_text(tokenizer, spec)
        if template is None:
            raise RenderError(
                "the tokenizer has no chat template for messages data "
                "(add chat_template.jinja to the tokenizer folder or set prompt.chat_template)"
            )
        self.tokenizer, self.spec, self.template = tokenizer, spec, template
        self.renderer: Any = _UNSET  # built inside the first render's bounds (its probes render the template)
        self.specials: dict[str, Any] | None = None

    def __call__(self, messages: list[dict[str, Any]], add_generation_prompt: bool) -> str:
        if self.spec.split_special_tokens:
            messages = mark_control_strings(self.tokenizer, self.template, messages)
        # time, loop and output bounds (sftgate.gates.tokenizer.render_limits)
        text = call_bounded(self.template, self._render, messages, add_generation_prompt)
        if not isinstance(text, str):
            raise RenderError(f"the chat template returned {type(text).__name__}, not text")
        if len(text) > MAX_OUTPUT:
            raise TemplateLimit(f"the chat template rendered {len(text)} characters (over {MAX_OUTPUT})")
        return text

    def _render(self, messages: list[dict[str, Any]], add_generation_prompt: bool) -> Any:
        kwargs = self.spec.kwargs
        if self.renderer is _UNSET:
            self.renderer = chat_renderer(self.tokenizer, self.template)
        if self.renderer is not None:
            if self.specials is None:
                self.specials = self.tokenizer.special_tokens_map
            fast = self.renderer.render(messages, add_generation_prompt, self.specials, kwargs)
            if fast is not None:
                return fast
        # The slow path: anything the fast renderer does not take, and every error (same messages).
        try:
            return self.tokenizer.apply_chat_template(
                messages, chat_template=self.template, tokenize=False, add_generation_prompt=add_generation_prompt,
                **kwargs,
            )
        except TemplateLimit:
            raise
        except Exception as exc:  # jinja2 TemplateError, raise_exception(), a template bug
            raise RenderError(f"the chat template failed: {type(exc).__name__}: {exc}") from exc


def render_prompt(tokenizer: Any, example: dict[str, Any], spec: PromptSpec) -> str:
    """The inference prompt text, up to and including the generation prompt."""
    return render_texts(tokenizer, example, spec).prompt
