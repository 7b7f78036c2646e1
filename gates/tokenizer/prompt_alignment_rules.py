"""The rule table of gate ``prompt-alignment`` (TOK001-TOK009) and its reporting limits."""

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

TEMPLATE_KWARGS_MISMATCH = Rule(
    "TOK005", "template_kwargs_mismatch", Severity.ERROR, GATE,
    "the chat-template variables of training and inference differ (e.g. enable_thinking)",
    "A thinking template renders another prompt for each value of its switches: trained with "
    "enable_thinking=false (an empty <think></think> in every prompt) and served with the default, "
    "the model sees a prompt it never saw in training.",
    "Use the same prompt.template_kwargs for training and serving: drop prompt.inference_template_kwargs, "
    "or pass the training values as chat_template_kwargs to the server (vLLM, TGI, transformers).",
    "prompt.template_kwargs: {enable_thinking: false}   prompt.inference_template_kwargs: {}",
)
TEMPLATE_TOKENS_TRAINED = Rule(
    "TOK006", "template_tokens_trained", Severity.ERROR, GATE,
    "the chat template inserts tokens into the trained span that the data did not contain",
    "Qwen3's template writes an empty <think>\\n\\n</think>\\n\\n before the final assistant reply while "
    "its generation prompt (thinking mode) does not: the model is trained to emit an empty reasoning "
    "block, the loss counts tokens nobody wrote, and it stops reasoning (LlamaFactory #9392, Qwen3 #1618).",
    "Render the inserted tokens in the prompt, where they are masked: set prompt.template_kwargs (e.g. "
    "{enable_thinking: false}) so the generation prompt holds them, or give the reasoning in the data.",
    "<|im_start|>assistant\\n  +  trained: <think>\\n\\n</think>\\n\\nParis<|im_end|>",
)
SPECIAL_TOKEN_IN_CONTENT = Rule(
    "TOK007", "special_token_in_content", Severity.ERROR, GATE,
    "a message's text contains a special token's string, which tokenizes as the control token",
    "Text such as '<|im_end|>', '</s>' or '[INST]' inside a user or assistant message becomes the control "
    "token itself: the turn ends early, a fake turn starts, and at serving time it is a prompt injection "
    "(a 64-GPU job lost to it: PrimeIntellect-ai renderers PR #116).",
    "Set prompt.split_special_tokens: true (the split-special-tokens rendering tokenizes message text as "
    "text, only the template's own control tokens stay control tokens), or remove the strings from the data.",
    '{"role": "user", "content": "repeat after me: <|im_end|>"}',
)
MISSING_BOS = Rule(
    "TOK008", "missing_bos", Severity.ERROR, GATE,
    "the chat template never writes BOS while chat text is tokenized without special tokens",
    "Chat-rendered text is tokenized with add_special_tokens=False (the template is expected to write BOS "
    "itself). A template without {{ bos_token }} for a model that needs BOS (Gemma) trains and serves "
    "every sequence without <bos>: quality drops silently.",
    "Start the chat template with {{ bos_token }} (the family's own template does).",
    "{%- for message in messages %}...   # Gemma template without {{ bos_token }}",
)
RECORD_NOT_RENDERED = Rule(
    "TOK009", "record_not_rendered", Severity.ERROR, GATE,
    "training records the chat template cannot render (or that have nothing to train) were not checked",
    "A gate that checked 65% of the data must not pass: the skipped records either crash training or are "
    "dropped by it, and none of them was checked for prompt alignment or EOS.",
    "Fix the records (the message names the template's error), or the template (e.g. a template that "
    "refuses system messages: fold the system text into the first user turn).",
    "raise_exception('System role not supported') on 7 of 20 records",
)

RULES = (PROMPT_NOT_PREFIX, DOUBLE_BOS, TEMPLATE_MISMATCH, IMPLICIT_SYSTEM_PROMPT, TEMPLATE_KWARGS_MISMATCH,
         TEMPLATE_TOKENS_TRAINED, SPECIAL_TOKEN_IN_CONTENT, MISSING_BOS, RECORD_NOT_RENDERED)
