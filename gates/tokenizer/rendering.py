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

Where it lives (this module gathers the entry points; import the rest from its home):
:mod:`~sftgate.gates.tokenizer.prompt_spec` (:class:`PromptSpec`, config, template text and hash),
:mod:`~sftgate.gates.tokenizer.template_rendering` (texts), :mod:`~sftgate.gates.tokenizer.fast_render`
(the fast chat-template path), :mod:`~sftgate.gates.tokenizer.token_encoding` (token ids, report helpers),
:mod:`~sftgate.gates.tokenizer.end_of_turn` (template probes), :mod:`~sftgate.gates.tokenizer.label_building`
(labels, collate) and :mod:`~sftgate.gates.tokenizer.data_scan` (the scan of a training file).

transformers is never imported here: the functions take a tokenizer object.
"""

from __future__ import annotations

from sftgate.gates.tokenizer.end_of_turn import end_of_turn_ids
from sftgate.gates.tokenizer.label_building import (
    COLLATORS,
    IGNORE_INDEX,
    Encoded,
    build_labels,
    collate,
    encode_example,
    encode_many,
    encode_prompt,
    encode_rendered,
    pad_id_for,
)
from sftgate.gates.tokenizer.prompt_spec import (
    PromptSpec,
    RenderError,
    chat_template_text,
    inference_spec_from_config,
    read_template_file,
    spec_from_config,
    template_hash,
)
from sftgate.gates.tokenizer.template_rendering import (
    Texts,
    apply_template,
    example_messages,
    format_prompt,
    render_prompt,
    render_texts,
)

__all__ = [
    "COLLATORS",
    "IGNORE_INDEX",
    "Encoded",
    "PromptSpec",
    "RenderError",
    "Texts",
    "apply_template",
    "build_labels",
    "chat_template_text",
    "collate",
    "encode_example",
    "encode_many",
    "encode_prompt",
    "encode_rendered",
    "end_of_turn_ids",
    "example_messages",
    "format_prompt",
    "inference_spec_from_config",
    "pad_id_for",
    "read_template_file",
    "render_prompt",
    "render_texts",
    "spec_from_config",
    "template_hash",
]
