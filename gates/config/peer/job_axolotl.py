"""Read an axolotl config into a :class:`~sftgate.gates.config.peer.jobs.PeerJob`.

Datasets: ``datasets`` (train) and ``test_datasets`` (eval), each with ``path`` (a local file or
folder, else a Hub dataset), ``data_files``, and ``type``: the alpaca-style types map fields to
prompt/completion, ``chat_template`` and ``sharegpt`` map ``field_messages``,
``message_property_mappings`` (or the legacy ``message_field_role`` / ``message_field_content``)
and ``roles`` to messages, a user-defined type (a mapping) its ``field_instruction`` /
``field_input`` / ``field_output``. The template: ``chat_template`` (``tokenizer_default``,
``jinja`` with ``chat_template_jinja`` as text or a file, or one of axolotl's built-in names,
which sftgate does not ship). ``sequence_len``, LoRA ``lora_target_modules`` /
``lora_target_linear``, ``train_on_inputs``, ``sample_packing``, ``special_tokens`` / ``tokens``
and ``dataset_prepared_path``.
"""

from __future__ import annotations

from typing import Any

from sftgate.gates.config.peer import tables
from sftgate.gates.config.peer.jobs import PeerJob, Setting, int_setting, local_dataset, setting

TEXT_TYPES = ("completion", "pretrain")


def dataset_mapping(entry: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """How one ``datasets`` entry maps onto sftgate's formats, or (None, why it is not checked)."""
    info = tables.tools_info()["axolotl"]
    kind = entry.get("type")
    if isinstance(kind, dict):  # a user-defined prompt format
        fields = [kind.get("field_instruction") or "instruction"]
        if kind.get("field_input"):
            fields.append(kind["field_input"])
        return {"format": "prompt_completion", "prompt": fields, "completion": kind.get("field_output") or "output"}, None
    if not isinstance(kind, str) or not kind:
        return None, "has no `type`: axolotl cannot tokenize it"
    base = kind.replace(":", ".").split(".")[0]
    known = info["dataset_types"].get(base)
    if known is None:
        return None, f"type '{kind}' is not a format sftgate reads (alpaca-style, chat_template, sharegpt)"
    if known["format"] == "text":
        return None, f"type '{kind}' is raw text (every token trained): no prompt/completion to check"
    mapping = dict(known)
    if mapping["format"] == "conversation":
        props = entry.get("message_property_mappings") or {}
        mapping["messages"] = entry.get("field_messages") or mapping["messages"]
        mapping["role"] = props.get("role") or entry.get("message_field_role") or mapping["role"]
        mapping["content"] = props.get("content") or entry.get("message_field_content") or mapping["content"]
        roles = {k: list(v) for k, v in info["roles"].items()}
        for canonical, aliases in (entry.get("roles") or {}).items():
            roles[canonical] = [*roles.get(canonical, []), *(aliases if isinstance(aliases, list) else [aliases])]
        mapping["roles"] = roles  # axolotl maps human/gpt to user/assistant: converted, never a false alarm
    return mapping, None


def _datasets(job: PeerJob, data: dict[str, Any], key: str, role: str) -> None:
    entries = data.get(key)
    if not isinstance(entries, list):
        return
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            continue
        mapping, why = dataset_mapping(entry)
        files = entry.get("data_files")
        values = [(files, (key, i, "data_files"))] if isinstance(files, str) else [
            (f, (key, i, "data_files", j)) for j, f in enumerate(files)] if isinstance(files, list) else []
        if not values:
            values = [(entry["path"], (key, i, "path"))]
        for value, key_path in values:
            if not isinstance(value, str):
                continue
            ref = local_dataset(job, role, value, key_path, mapping=mapping)
            if why is not None and not ref.missing:
                ref.note, ref.path = f"datasets entry {i} {why}", None
            job.datasets.append(ref)


def read(job: PeerJob, data: dict[str, Any]) -> None:
    job.model = setting(data, "base_model")
    job.revision = data.get("revision_of_model") or data.get("model_revision")
    job.tokenizer = setting(data, "tokenizer_config") or job.model
    _datasets(job, data, "datasets", "train")
    _datasets(job, data, "test_datasets", "eval")
    template = data.get("chat_template")
    if template == "jinja" and isinstance(data.get("chat_template_jinja"), str):
        job.chat_template = Setting(data["chat_template_jinja"], ("chat_template_jinja",))
    elif isinstance(template, str) and template not in ("tokenizer_default",) and not template.startswith(
            "tokenizer_default_fallback_"):
        job.builtin_template = Setting(template, ("chat_template",))
    if isinstance(data.get("default_system_message"), str):
        job.system = data["default_system_message"]
    job.max_seq_len = int_setting(data, "sequence_len")
    if data.get("lora_target_linear") is True:
        job.lora_targets = Setting("all-linear", ("lora_target_linear",))
    elif setting(data, "lora_target_modules") is not None and data.get("adapter"):
        value = data["lora_target_modules"]
        job.lora_targets = Setting([value] if isinstance(value, str) else value, ("lora_target_modules",))
    job.train_on_inputs = setting(data, "train_on_inputs")
    job.packing = setting(data, "sample_packing")
    job.special_tokens = setting(data, "special_tokens") or setting(data, "tokens")
    job.prepared = setting(data, "dataset_prepared_path")
