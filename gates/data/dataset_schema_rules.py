"""The rule table of the ``dataset-schema`` gate (``DATA001``...), with the conversions its fixes quote.

:mod:`sftgate.gates.data.dataset_schema` is the gate; findings are built from :data:`R` by name.
"""

from __future__ import annotations

from sftgate.gates.frame.core import Rule, Severity, rule_maker

GATE = "dataset-schema"

# The jq commands that convert the commonest foreign formats (quoted in DATA003's fix and suggestions).
CONVERT_ALPACA = (
    "jq -c '{prompt: (.instruction + (if (.input // \"\") != \"\" then \"\\n\\n\" + .input else \"\" end)), "
    "completion: .output}' in.jsonl > out.jsonl"
)
CONVERT_SHAREGPT = (
    "jq -c '{messages: [.conversations[] | {role: ({\"system\": \"system\", \"human\": \"user\", "
    "\"gpt\": \"assistant\"}[.from]), content: .value}]}' in.jsonl > out.jsonl"
)


_rule = rule_maker(GATE)


RULES: tuple[Rule, ...] = (
    _rule("DATA001", "invalid_json_line", "a line is not valid JSON (or not valid UTF-8)",
          "A trainer that meets it crashes hours in, or (worse) drops the line silently.",
          "Fix or remove the line; every JSONL line is one complete JSON object in UTF-8.",
          '{"prompt": "Hi", "completion": "Hello"'),
    _rule("DATA002", "not_an_object", "a line is valid JSON but not an object",
          "A record is a JSON object with named fields; an array or a string has no format.",
          'Wrap it: {"prompt": ..., "completion": ...} or {"messages": [...]}.',
          '["Hi", "Hello"]'),
    _rule("DATA003", "unknown_format", "a record is neither prompt/completion nor messages",
          "Trainers pick a format by key names; an unknown one (alpaca, ShareGPT, text) is dropped or crashes.",
          "Convert it: alpaca -> " + CONVERT_ALPACA + "; ShareGPT -> " + CONVERT_SHAREGPT + ".",
          '{"instruction": "Summarise", "input": "...", "output": "..."}'),
    _rule("DATA004", "missing_field", "a required field is missing",
          "A record without its completion (or a message without its content) trains on nothing or crashes.",
          "Add the field; prompt_completion needs prompt and completion, a message needs role and content.",
          '{"prompt": "Hi"}'),
    _rule("DATA005", "empty_field", "a required field is empty or only whitespace",
          "An empty completion teaches the model to answer with nothing (often just EOS).",
          "Fill the field or drop the record.",
          '{"prompt": "Hi", "completion": "  "}'),
    _rule("DATA006", "wrong_type", "a field has the wrong JSON type",
          "A number or a list where text is expected is stringified, dropped or crashes the template.",
          "Make prompt, completion and every message content a string; messages a list of objects.",
          '{"prompt": "Hi", "completion": 42}'),
    _rule("DATA007", "role_order", "chat roles do not alternate (or a role is unknown)",
          "Chat templates (Mistral, Llama, Gemma) raise on out-of-order roles, or render a prompt the model "
          "never sees at inference.",
          "Start with an optional system message, then alternate user and assistant; use the roles "
          "system, user, assistant and tool (tool answers an assistant tool call).",
          '{"messages": [{"role": "user", ...}, {"role": "user", ...}]}'),
    _rule("DATA008", "last_turn_not_assistant", "a conversation does not end with an assistant turn",
          "There is nothing to learn: no supervised completion. mistral-finetune crashes on it.",
          "End every conversation with the assistant's answer, or drop the trailing user turn.",
          '{"messages": [{"role": "user", "content": "Hi"}]}'),
    _rule("DATA009", "completion_schema", "a completion is not strict JSON valid against the output schema",
          "The training data must show exactly the format the model has to produce: a fenced, prose-wrapped "
          "or schema-breaking completion is learned and reproduced.",
          "Fix the completion (the evidence names the strict-JSON rule and the JSON path), or fix the schema.",
          '{"prompt": "...", "completion": "```json\\n{\\"label\\": \\"ok\\"}\\n```"}'),
    _rule("DATA010", "duplicate_example", "a record repeats an earlier one exactly",
          "Duplicates over-weight some examples and inflate apparent quality.",
          "Deduplicate (e.g. `sort -u`) unless the repetition is intended.",
          severity=Severity.WARNING),
    _rule("DATA011", "empty_dataset", "a dataset file has no records",
          "Training on nothing fails late, or silently trains for zero steps.",
          "Point the config at the right file; check the export step that wrote it."),
    _rule("DATA012", "too_long", "a record is longer than max_seq_len tokens",
          "The trainer truncates it and cuts the completion's end and its EOS: the model learns not to stop.",
          "Raise train.max_seq_len, shorten or drop the long records (the evidence gives the token count)."),
    _rule("DATA013", "mixed_formats", "a file mixes formats (or a record is not in the configured format)",
          "Trainers (TRL, for one) pick the format from the first record and mishandle the rest.",
          "Convert every record to one format (data.format in the config, or the file's majority format)."),
    _rule("DATA014", "blank_line", "a JSONL file has blank lines",
          "Tolerated here, but some readers (datasets' JSON loader in strict mode, jq -s) stop at them.",
          "Remove them: `sed -i '/^\\s*$/d' FILE`.", severity=Severity.WARNING),
    _rule("DATA015", "unseen_enum_value", "an enum value of the output schema never occurs in the completions",
          "The model cannot learn to produce a class it never saw in training.",
          "Add examples of the missing value, or remove it from the schema.",
          severity=Severity.WARNING),
    _rule("DATA016", "template_error", "the chat template cannot render a record (with --tokenizer)",
          "The trainer renders every record with this template: it would crash on this one, or skip it.",
          "Fix the record (often a role the template refuses, e.g. system for some Mistral templates) or "
          "the template (prompt.chat_template)."),
)
R = {rule.name: rule for rule in RULES}
