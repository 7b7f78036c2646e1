"""The label gate on a peer job's prepared (tokenized) dataset, when sftgate has that gate.

axolotl writes its tokenized data to ``dataset_prepared_path`` (one ``save_to_disk`` folder per
dataset hash), LLaMA-Factory to ``tokenized_path``. When the config names one that exists, the
label gate (``sftgate labels``) runs on it with the job's tokenizer, told whether the prompt is
meant to be trained (``train_on_inputs``) and whether examples are packed.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from sftgate.gates.config.peer.jobs import PeerJob, resolve
from sftgate.gates.frame.core import GateResult


def _label_gate() -> Any:
    """The label gate's module when it is installed (a ``check`` over tokenized ``data``), else None."""
    import importlib

    try:
        module = importlib.import_module("sftgate.gates.tokenizer.labels")
    except ImportError:
        return None
    check = getattr(module, "check", None)
    if check is None or not getattr(module, "RULES", None) or "data" not in inspect.signature(check).parameters:
        return None
    return module


def prepared_folders(path: Path) -> list[Path]:
    """The ``save_to_disk`` folders under a prepared-data path (axolotl nests one per dataset hash)."""
    if (path / "dataset_info.json").is_file() or (path / "state.json").is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.is_dir() and ((p / "state.json").is_file()
                                                               or (p / "dataset_info.json").is_file()))


def label_result(job: PeerJob, tokenizer: Path | None, fail_fast: bool) -> GateResult | None:
    """The label gate's result on the job's prepared dataset, or None when there is nothing to run."""
    if job.prepared is None or not isinstance(job.prepared.value, str):
        return None
    module = _label_gate()
    path, _ = resolve(job.prepared.value, job.search_dirs)
    if module is None or path is None or tokenizer is None or not path.is_dir():
        return None
    folders = prepared_folders(path)
    if not folders:
        return None
    from sftgate.gates.frame.execute import run_gate

    params = inspect.signature(module.check).parameters
    kwargs: dict[str, Any] = {"data": folders[0], "tokenizer": tokenizer}
    if "prompt_trained_ok" in params and job.train_on_inputs is not None:
        kwargs["prompt_trained_ok"] = bool(job.train_on_inputs.value)
    if "packed" in params and job.packing is not None:
        kwargs["packed"] = bool(job.packing.value)
    return run_gate(getattr(module, "GATE", "labels"), _stage(), module.check, fail_fast=fail_fast, **kwargs)


def _stage() -> Any:
    from sftgate.gates.frame.core import Stage

    return Stage.TOKENIZER
