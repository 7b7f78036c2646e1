"""Read a LLaMA-Factory config into a :class:`~sftgate.gates.config.peer.jobs.PeerJob`.

``dataset`` / ``eval_dataset`` are names (a comma-separated string or a list) looked up in
``dataset_dir/dataset_info.json`` (``dataset_dir`` defaults to ``data``, relative to where
LLaMA-Factory runs: tried from the config's folder, the current folder and the folders above the
config). Each entry's ``file_name`` is the local file or folder, ``formatting`` (alpaca,
sharegpt, openai) with ``columns`` and ``tags`` how its records read, as LLaMA-Factory's
``DatasetAttr`` does (when ``columns`` is given, the columns it leaves out are unset). The
entries' own keys are validated too (``dataset_info.json:NAME.key``). ``template`` names one of
LLaMA-Factory's built-in templates; ``cutoff_len`` (default 2048) is the sequence length.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sftgate.gates.config.peer import tables
from sftgate.gates.config.peer.jobs import DatasetRef, PeerJob, Setting, int_setting, resolve, setting
from sftgate.gates.config.peer.rules import DATASET_MISSING
from sftgate.gates.frame.core import InputError
from sftgate.gates.readers import document

DATA_CONFIG = "dataset_info.json"
DEFAULT_CUTOFF = 2048
_ALPACA = {"prompt": "instruction", "query": "input", "response": "output", "history": None, "system": None}
_SHAREGPT = {"messages": "conversations", "system": None}
_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
         "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}


def names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [n.strip() for n in value.split(",") if n.strip()]
    if isinstance(value, list):
        return [str(n).strip() for n in value if str(n).strip()]
    return []


def entry_mapping(entry: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """How a dataset_info.json entry's records map onto sftgate's formats, or (None, why not)."""
    if entry.get("ranking"):
        return None, "is preference data (ranking: true), not SFT data"
    columns = entry.get("columns")
    raw_tags = entry.get("tags")
    tags: dict[str, Any] = raw_tags if isinstance(raw_tags, dict) else {}

    def column(name: str, default: str | None) -> str | None:
        if isinstance(columns, dict):
            value = columns.get(name)
            return value if isinstance(value, str) else None
        return default

    formatting = entry.get("formatting", "alpaca")
    if formatting == "alpaca":
        mapping = {"format": "alpaca_messages", **{k: column(k, v) for k, v in _ALPACA.items()}}
        if mapping["prompt"] is None or mapping["response"] is None:
            return None, "maps no prompt/response columns (pre-training text)"
        return mapping, None
    tag = {k: (tags.get(k) if isinstance(tags.get(k), str) else v) for k, v in _TAGS.items()}
    roles = {"user": [tag["user_tag"]], "assistant": [tag["assistant_tag"]], "tool": [tag["observation_tag"]],
             "system": [tag["system_tag"]], "function_call": [tag["function_tag"]]}
    return {"format": "conversation", "messages": column("messages", "conversations") or "conversations",
            "role": tag["role_tag"], "content": tag["content_tag"], "system": column("system", None),
            "roles": roles}, None


def _dataset_info(job: PeerJob, data: dict[str, Any]) -> tuple[Path | None, dict[str, Any] | None]:
    """The dataset folder and its dataset_info.json (its entries this config uses validated), or None."""
    folder_value = data.get("dataset_dir", "data")
    if not isinstance(folder_value, str) or folder_value == "ONLINE" or folder_value.startswith("REMOTE:"):
        return None, None
    folder, _ = resolve(folder_value, job.search_dirs)
    if folder is None or not (folder / DATA_CONFIG).is_file():
        return folder, None
    try:
        info = document.load(folder / DATA_CONFIG)
    except InputError as exc:
        job.findings.append(DATASET_MISSING.finding(f"{DATA_CONFIG} cannot be read: {exc.message}",
                                                    str(folder / DATA_CONFIG)))
        return folder, None
    used = set(names(data.get("dataset"))) | set(names(data.get("eval_dataset")))
    _validate_entries(job, info, used)
    return folder, info.data if isinstance(info.data, dict) else None


def _validate_entries(job: PeerJob, info: document.Document, used: set[str]) -> None:
    """The entries of dataset_info.json the config uses, against their documented keys (LLaMA-Factory
    ignores the others silently)."""
    from sftgate.gates.config.peer.keys import check_keys

    if not isinstance(info.data, dict):
        return
    table = tables.table("llamafactory")
    entry = tables.KeySpec("entry", frozenset({"object"}), section="dataset_info_entry")
    subset = document.Document(info.path, {k: v for k, v in info.data.items() if str(k) in used}, info.lines,
                               info.is_json)
    keyed = tables.KeyTable(table.tool, DATA_CONFIG, table.version, table.source,
                            keys={str(k): entry for k in subset.data}, sections=table.sections,
                            info={"ignores_unknown": True, "tool_label": table.label})
    job.findings.extend(check_keys(subset, keyed))


def _datasets(job: PeerJob, data: dict[str, Any], key: str, role: str, folder: Path | None,
              info: dict[str, Any] | None) -> None:
    for name in names(data.get(key)):
        ref = DatasetRef(role, name, (key,), job.location((key,)), job.line((key,)))
        job.datasets.append(ref)
        if info is None:
            if folder is None:
                ref.note = f"dataset '{name}' is loaded from the Hub (dataset_dir: {data.get('dataset_dir')})"
            else:
                ref.missing = True
                ref.tried = [str(folder / DATA_CONFIG)]
            continue
        entry = info.get(name)
        if not isinstance(entry, dict):
            ref.missing = True
            ref.tried = [f"{DATA_CONFIG}: no entry '{name}'"] if folder is None else [
                f"{folder / DATA_CONFIG}: no entry '{name}'"]
            continue
        remote = next((k for k in ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")
                       if k in entry), None)
        if remote is not None or not isinstance(entry.get("file_name"), str):
            ref.note = f"dataset '{name}' is {remote or 'not a file'} ({entry.get(remote or 'file_name')}): not read offline"
            continue
        assert folder is not None
        path = folder / entry["file_name"]
        ref.tried = [str(path)]
        if not path.exists():
            ref.missing = True
            continue
        ref.path = path
        ref.mapping, why = entry_mapping(entry)
        if why is not None:
            ref.note, ref.path = f"dataset '{name}' {why}", None


def read(job: PeerJob, data: dict[str, Any]) -> None:
    job.model = setting(data, "model_name_or_path")
    job.revision = data.get("model_revision")
    job.tokenizer = job.model
    folder, info = _dataset_info(job, data)
    _datasets(job, data, "dataset", "train", folder, info)
    _datasets(job, data, "eval_dataset", "eval", folder, info)
    if isinstance(data.get("template"), str):
        job.builtin_template = Setting(data["template"], ("template",))
    if isinstance(data.get("default_system"), str):
        job.system = data["default_system"]
    job.max_seq_len = int_setting(data, "cutoff_len") or Setting(DEFAULT_CUTOFF, ())
    target = data.get("lora_target")
    if data.get("finetuning_type", "lora") == "lora" and isinstance(target, str | list):
        modules = names(target)
        job.lora_targets = Setting("all-linear" if modules == ["all"] else modules, ("lora_target",))
    job.train_on_inputs = setting(data, "train_on_prompt")
    job.packing = setting(data, "packing") or setting(data, "neat_packing")
    job.special_tokens = setting(data, "add_special_tokens") or setting(data, "new_special_tokens_config")
    job.prepared = setting(data, "tokenized_path")
