"""Read a TRL ``trl sft --config`` file into a :class:`~sftgate.gates.config.peer.jobs.PeerJob`.

``dataset_name`` is a local file or folder (a folder's ``*train*`` files are the train split, its
files named like ``dataset_test_split``, ``test``, ``eval`` or ``valid`` the eval split) or a Hub
dataset; ``datasets`` (DatasetMixtureConfig) entries give ``path`` and ``data_files`` (a dict of
splits, a list, a string), with ``split`` deciding train or eval. SFT data is already in
sftgate's formats (prompt/completion, messages); ``dataset_text_field`` records are language
modelling text, not checked. ``chat_template_path`` is a ``.jinja`` file (or a tokenizer folder
with one), ``max_length`` (default 1024) the sequence length, ``lora_target_modules`` (with
``use_peft``) the LoRA targets, ``completion_only_loss: false`` trains the prompt, ``packing``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sftgate.gates.config.peer.jobs import PeerJob, Setting, int_setting, local_dataset, setting

DEFAULT_MAX_LENGTH = 1024
BUILDERS = ("json", "csv", "parquet", "arrow", "text")
_EVAL_WORDS = ("test", "eval", "valid", "validation", "dev")


def _split_role(split: str, test_split: str) -> str:
    return "eval" if split == test_split or split in _EVAL_WORDS else "train"


def _folder_files(job: PeerJob, value: str, key_path: tuple[Any, ...], folder: Path, test_split: str) -> bool:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jsonl", ".json", ".parquet"))
    if not files:
        return False
    for p in files:
        stem = p.stem.lower()
        role = "eval" if test_split in stem or any(w in stem for w in _EVAL_WORDS) else "train"
        ref = local_dataset(job, role, str(p), key_path)
        ref.value = value
        job.datasets.append(ref)
    return True


def _dataset_name(job: PeerJob, data: dict[str, Any], test_split: str) -> None:
    value = data.get("dataset_name")
    if not isinstance(value, str) or not value:
        return
    ref = local_dataset(job, "train", value, ("dataset_name",))
    if ref.path is not None and ref.path.is_dir() and _folder_files(job, value, ("dataset_name",), ref.path, test_split):
        return
    job.datasets.append(ref)


def _mixture(job: PeerJob, data: dict[str, Any], test_split: str) -> None:
    entries = data.get("datasets")
    if not isinstance(entries, list):
        return
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            continue
        split = str(entry.get("split") or "train")
        files = entry.get("data_files")
        if isinstance(files, dict):
            for name, value in files.items():
                for j, f in enumerate([value] if isinstance(value, str) else value if isinstance(value, list) else []):
                    key_path: tuple[str | int, ...] = (("datasets", i, "data_files", str(name)) if isinstance(value, str)
                                                       else ("datasets", i, "data_files", str(name), j))
                    job.datasets.append(local_dataset(job, _split_role(str(name), test_split), f, key_path))
        elif isinstance(files, str | list):
            for j, f in enumerate([files] if isinstance(files, str) else files):
                key_path = ("datasets", i, "data_files") if isinstance(files, str) else ("datasets", i, "data_files", j)
                if isinstance(f, str):
                    job.datasets.append(local_dataset(job, _split_role(split, test_split), f, key_path))
        elif entry["path"] not in BUILDERS:
            job.datasets.append(local_dataset(job, _split_role(split, test_split), entry["path"], ("datasets", i, "path")))


def read(job: PeerJob, data: dict[str, Any]) -> None:
    job.model = setting(data, "model_name_or_path")
    job.revision = data.get("model_revision")
    job.tokenizer = job.model
    test_split = str(data.get("dataset_test_split") or "test")
    _dataset_name(job, data, test_split)
    _mixture(job, data, test_split)
    template = data.get("chat_template_path")
    if isinstance(template, str) and template:
        if template.lower().endswith((".jinja", ".j2")):
            job.chat_template = Setting(template, ("chat_template_path",))
        else:
            job.builtin_template = Setting(template, ("chat_template_path",))
    job.max_seq_len = int_setting(data, "max_length") or Setting(DEFAULT_MAX_LENGTH, ())
    if data.get("use_peft") and setting(data, "lora_target_modules") is not None:
        value = data["lora_target_modules"]
        job.lora_targets = Setting(value if value == "all-linear" or isinstance(value, list) else [value],
                                   ("lora_target_modules",))
    if data.get("completion_only_loss") is False:
        job.train_on_inputs = Setting(True, ("completion_only_loss",))
    job.packing = setting(data, "packing")
    job.special_tokens = setting(data, "eos_token")
