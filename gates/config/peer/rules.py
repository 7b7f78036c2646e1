"""The rule table of gate ``peer-config`` (CFG001-CFG007): a trainer's job config, read as that trainer would."""

from __future__ import annotations

from sftgate.gates.frame.core import Rule, Severity

GATE = "peer-config"

UNKNOWN_CONFIG_KEY = Rule(
    "CFG001", "unknown_config_key", Severity.ERROR, GATE,
    "a key the trainer does not document (a typo, a renamed option, another tool's name for it)",
    "axolotl drops unknown keys silently ('Config valid. Ready to train!') and the option is never "
    "applied; TRL and LLaMA-Factory stop at start-up, after the GPUs were allocated. The key tables "
    "come from each tool's own config reference, and name the version they were made from.",
    "Use the key in the suggestion (did you mean), or remove it. An axolotl plugin's key needs its "
    "plugin in `plugins:`. `sftgate check --format-of TOOL` forces the format when it is guessed wrong.",
    "lora_taget_modules: [q_proj, v_proj]   # -> lora_target_modules",
)
NOT_A_JOB_CONFIG = Rule(
    "CFG002", "not_a_job_config", Severity.INFO, GATE,
    "the file is not a training job config (accelerate, DeepSpeed, FSDP, a launcher): nothing to gate",
    "An accelerate, DeepSpeed or FSDP config, or a cloud launcher's file, names no model and no "
    "data; it passes, with this note, instead of failing for a skipped gate.",
    "Run `sftgate check` on the job config (the file with the base model and the datasets).",
    "compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU",
)
WRONG_CONFIG_TYPE = Rule(
    "CFG003", "wrong_config_type", Severity.ERROR, GATE,
    "a value of the wrong type or outside the allowed values",
    "A list where a number is expected, a misspelled choice, or a quoted number that the tool does not "
    "convert (LLaMA-Factory passes `learning_rate: \"2e-4\"` on as a string) fails at start-up or deep in "
    "the optimizer.",
    "Write the value with the type the message names; for a choice, use one of the allowed values.",
    "learning_rate: \"2e-4\"   # LLaMA-Factory: a string; write 2.0e-4",
)
MISSING_CONFIG_KEY = Rule(
    "CFG004", "missing_config_key", Severity.ERROR, GATE,
    "a key the config needs is missing (always, or because another key asks for it)",
    "`adapter: lora` without `lora_r`, `adapter: qlora` without `load_in_4bit`, a training run "
    "without a dataset: the tool's own validators stop there, after the job was scheduled.",
    "Add the key the message names (the finding quotes the tool's own rule).",
    "adapter: lora   # and no lora_r",
)
CONFLICTING_CONFIG_KEYS = Rule(
    "CFG005", "conflicting_config_keys", Severity.ERROR, GATE,
    "keys the tool refuses together",
    "Some options exclude each other (`sample_packing` with RLHF in axolotl, an adapter with "
    "`finetuning_type: full` in LLaMA-Factory); the tool stops at start-up.",
    "Remove one of them, as the message says.",
    "finetuning_type: full\nadapter_name_or_path: saves/lora   # adapters need finetuning_type: lora",
)
DATASET_MISSING = Rule(
    "CFG006", "dataset_missing", Severity.ERROR, GATE,
    "a dataset the config names does not exist (a local file, a dataset_info.json entry)",
    "A local dataset path that does not exist is tried as a Hub dataset and fails there; a "
    "LLaMA-Factory dataset name missing from dataset_info.json stops the job at start-up.",
    "Fix the path (tried from the config's folder, the current folder and the folders above the "
    "config), or add the entry to dataset_info.json.",
    "datasets:\n  - path: data/train.jsonl   # no such file",
)
NOT_CHECKED = Rule(
    "CFG007", "not_checked_offline", Severity.INFO, GATE,
    "something the config names that sftgate cannot check here (a Hub dataset, a tool's built-in template)",
    "A skip is never a pass: the report says what was not checked and why, so nobody reads the "
    "silence as a verdict.",
    "Check it where it is available: download the dataset and point the config at the file, or "
    "give the template as a .jinja file.",
    "datasets:\n  - path: tatsu-lab/alpaca   # a Hub dataset: not read offline",
)

RULES: tuple[Rule, ...] = (
    UNKNOWN_CONFIG_KEY, NOT_A_JOB_CONFIG, WRONG_CONFIG_TYPE, MISSING_CONFIG_KEY, CONFLICTING_CONFIG_KEYS,
    DATASET_MISSING, NOT_CHECKED,
)
