"""The rule table of gate ``prompt-alignment`` (TOK001-TOK004) and its reporting limits."""

from __future__ import annotations

from sftgate.gates.frame.core import Rule, Severity

GATE = "prompt-alignment"
MAX_FINDINGS = 20

PROMPT_NOT_PREFIX = Rule(
    "TOK001", "prompt_not_prefix", Severity.ERROR, GATE,
    "the prompt's tokens are not a prefix of the prompt + completion tokens",
    "Training masks the first len(prompt) tokens of prompt + completion; inference generates "
    "from the prompt's own tokens. If they differ (a trailing space moves the token boundary, "
    "a template renders the last turn differently when a reply follows) the model generates "
    "from a context it never saw, and a completion token is masked in training.",
    "Strip trailing whitespace from prompts (put the space at the start of the completion), or "
    "fix the template so the prompt renders the same with and without the reply.",
    '{"prompt": "Answer: ", "completion": "Paris"}   # "▁" then "▁Paris"',
)
DOUBLE_BOS = Rule(
    "TOK002", "double_bos", Severity.ERROR, GATE,
    "the encoded sequence starts with BOS twice",
    "A rendered text that already starts with <s> / <|begin_of_text|>, tokenized again with "
    "add_special_tokens=True, gets a second BOS. Training and serving then disagree on the "
    "first tokens, and quality drops.",
    "Remove the BOS string from the prompt text / prompt.template (the tokenizer adds it), or "
    "tokenize chat-rendered text with add_special_tokens=False.",
    'prompt.template: "<s>[INST] {prompt} [/INST]"  with a tokenizer that adds <s>',
)
TEMPLATE_MISMATCH = Rule(
    "TOK003", "template_mismatch", Severity.ERROR, GATE,
    "the inference rendering of the fixed cases differs from the training rendering",
    "The model answers well only in the format it was trained on: a system prompt present in "
    "one and not the other, an edited chat template, or a prompt without the generation "
    "prompt (the assistant header) all change what the model sees.",
    "Serve with the template and system prompt used in training (prompt.chat_template, "
    "prompt.system); record the template's sha256 with the run and compare it at release.",
    "prompt.system: 'Answer in JSON.'   prompt.inference_system: null",
)
IMPLICIT_SYSTEM_PROMPT = Rule(
    "TOK004", "implicit_system_prompt", Severity.ERROR, GATE,
    "the chat template adds a system prompt the data did not give",
    "Some templates (Qwen2.5's) inject a default system prompt when a conversation has none. "
    "Training then sees a system prompt your data and your serving stack may not have.",
    "Set prompt.system explicitly (the template then uses yours), or remove the default from the template.",
    "{% else %}<|im_start|>system\\nYou are a helpful assistant.<|im_end|>{% endif %}",
)

RULES = (PROMPT_NOT_PREFIX, DOUBLE_BOS, TEMPLATE_MISMATCH, IMPLICIT_SYSTEM_PROMPT)
