"""``sftgate check`` on a peer config: its own gate, then every existing gate the config gives inputs for.

Order: ``peer-config`` (format, keys, datasets), ``model-id`` (the tool's model-ID keys, relative
paths from the tool's folders), ``dataset-schema`` and ``split-isolation`` (each local dataset,
converted to sftgate's formats where the tool's format differs; findings point at the original
file), ``prompt-alignment`` and ``eos`` (with the tokenizer, when it is a local folder or in the
HF cache, the template the config picks and its sequence length), ``lora-targets`` (when the
base model's config.json is local) and ``labels`` (on the tokenized data the trainer wrote:
axolotl ``dataset_prepared_path``, LLaMA-Factory ``tokenized_path``, with ``train_on_inputs`` /
``train_on_prompt`` saying whether the prompt is meant to be trained). A gate without inputs is reported as a skip that does not block, with the
reason; nothing is downloaded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.config.hub_id_grammar import is_valid_repo_id
from sftgate.gates.config.peer import fields, gate, jobs, tables
from sftgate.gates.config.peer.datasets import Converted, convert, relocate
from sftgate.gates.config.peer.detect import NOT_A_JOB, Detection
from sftgate.gates.config.peer.job_reader import read_job
from sftgate.gates.config.peer.offline import cached_snapshot, prompt_spec, template_source
from sftgate.gates.frame import registry
from sftgate.gates.frame.core import Finding, GateResult, SftgateError, Stage, Status
from sftgate.gates.frame.execute import run_gate, skipped
from sftgate.gates.readers.document import Document, dotted


def run_peer(doc: Document, detection: Detection, add: Callable[[GateResult], None], *,
             fail_fast: bool = False) -> None:
    """Run the gates for a peer config (or a file that is no job config); ``add`` takes each result."""
    if detection.format == NOT_A_JOB:
        add(run_gate(gate.GATE, Stage.CONFIG, gate.check, doc=doc, detection=detection))
        return
    tool = detection.format
    table = tables.table(tool)
    job = read_job(doc, tool)
    steps: list[tuple[str, Callable[[], GateResult | None]]] = [
        (gate.GATE, lambda: run_gate(gate.GATE, Stage.CONFIG, gate.check, fail_fast=fail_fast, doc=doc,
                                     detection=detection, table=table, job=job)),
        ("model-id", lambda: _model_id(doc, job, tool, fail_fast)),
    ]
    with tempfile.TemporaryDirectory(prefix="sftgate-peer-") as tmp:
        ready = _Ready(job, Path(tmp), table.label)
        steps += [("dataset-schema", lambda: ready.dataset_schema(fail_fast)),
                  ("split-isolation", lambda: ready.split_isolation(fail_fast)),
                  ("prompt-alignment", lambda: ready.tokenizer_gate("prompt-alignment", fail_fast)),
                  ("eos", lambda: ready.tokenizer_gate("eos", fail_fast)),
                  ("model-config", lambda: ready.model_config(fail_fast)),
                  ("embeddings", lambda: ready.embeddings(fail_fast)),
                  ("lora-targets", lambda: ready.lora_targets(fail_fast)),
                  ("labels", lambda: ready.labels(fail_fast))]
        for name, step in steps:
            try:
                result = step()
            except SftgateError as exc:  # its inputs could not be prepared (a missing template file, ...)
                stage = registry.get(name).stage
                result = GateResult(name, stage, Status.ERROR, 0.0, reason=str(exc), error_exit_code=exc.exit_code)
            if result is None:
                continue
            add(result)
            if fail_fast and result.blocks and result.status is not Status.SKIP:
                break


def _model_id(doc: Document, job: jobs.PeerJob, tool: str, fail_fast: bool) -> GateResult:
    from sftgate.gates.config import model_id

    spec = registry.get("model-id")
    kwargs = model_id.from_document(doc, fields=fields.peer_fields(doc.data, tool), search_dirs=job.search_dirs[1:])
    return run_gate(spec.name, spec.stage, model_id.check, fail_fast=fail_fast, **kwargs)


def _skip(name: str, reason: str) -> GateResult:
    return skipped(name, registry.get(name).stage, reason, required=False)


class _Ready:
    """The job's inputs made ready for the gates, once: converted datasets, the tokenizer folder."""

    def __init__(self, job: jobs.PeerJob, tmp: Path, label: str) -> None:
        self.job = job
        self.tmp = tmp
        self.label = label
        self._data: list[tuple[jobs.DatasetRef, Converted]] | None = None
        self._tokenizer: tuple[Path | None, str] | None = None

    # ------------------------------------------------------------------ inputs

    def datasets(self) -> list[tuple[jobs.DatasetRef, Converted]]:
        if self._data is None:
            self._data = []
            for ref in self.job.datasets:
                if ref.path is None:
                    continue
                for path in _files(ref.path):
                    display = str(path)
                    if ref.mapping:
                        conv = convert(path, display, ref.mapping, self.tmp, len(self._data))
                    else:
                        conv = Converted(path, display, path)
                    self._data.append((ref, conv))
        return self._data

    def tokenizer(self) -> tuple[Path | None, str]:
        """The tokenizer folder available offline, or (None, why not)."""
        if self._tokenizer is None:
            self._tokenizer = _find_folder(self.job, self.job.tokenizer, ("tokenizer.json", "tokenizer.model",
                                                                          "tekken.json"), "tokenizer")
        return self._tokenizer

    def _run(self, name: str, calls: list[tuple[str, dict[str, Any]]], fail_fast: bool,
             datasets: list[Converted] | None = None) -> GateResult:
        """One gate over several inputs (``(label, kwargs)`` each): one result, metrics per input."""
        spec = registry.get(name)
        module = spec.load()
        found = datasets if datasets is not None else [c for _, c in self.datasets()]

        def combined(metrics: dict[str, Any]) -> Iterator[Finding]:
            for label, kwargs in calls:
                sub: dict[str, Any] = {}
                yield from relocate(module.check(**kwargs, metrics=sub), found, self.label)
                if len(calls) == 1:
                    metrics.update(sub)
                else:
                    metrics[label] = sub

        return run_gate(spec.name, spec.stage, combined, fail_fast=fail_fast)

    # ------------------------------------------------------------------ the gates

    def dataset_schema(self, fail_fast: bool) -> GateResult:
        data = self.datasets()
        if not data:
            return _skip("dataset-schema", _no_data_reason(self.job))
        folder, _ = self.tokenizer()
        extra: dict[str, Any] = {}
        if folder is not None and self.job.max_seq_len is not None:
            extra = {"tokenizer": folder, "max_seq_len": self.job.max_seq_len.value, "prompt": prompt_spec(self.job)}
        calls = [(f"{ref.role}: {conv.display}", {("train" if ref.role == "train" else "eval"): conv.path, **extra})
                 for ref, conv in data]
        return self._run("dataset-schema", calls, fail_fast)

    def split_isolation(self, fail_fast: bool) -> GateResult:
        data = self.datasets()
        train = [c for r, c in data if r.role == "train"]
        evals = [c for r, c in data if r.role == "eval"]
        if not train or not evals:
            return _skip("split-isolation", "the config names no local eval dataset to compare with the training "
                         "data (a split made at random at training time, such as val_set_size, cannot leak)")
        calls = [(f"{t.display} vs {e.display}", {"train": t.path, "eval": e.path}) for t in train for e in evals]
        return self._run("split-isolation", calls, fail_fast)

    def tokenizer_gate(self, name: str, fail_fast: bool) -> GateResult:
        folder, why = self.tokenizer()
        if folder is None:
            return _skip(name, why)
        spec = prompt_spec(self.job)
        base: dict[str, Any] = {"tokenizer": folder, "spec": spec,
                                "template_source": template_source(self.job, folder)}
        if name == "eos":
            model_dir, _ = _find_folder(self.job, self.job.model, ("config.json",), "model")
            from sftgate.gates.readers import tokenizer_io

            generation = next((tokenizer_io.generation_config_path(d) for d in (model_dir, folder)
                               if d is not None and tokenizer_io.generation_config_path(d) is not None), None)
            base.update(max_seq_len=self.job.max_seq_len.value if self.job.max_seq_len else None,
                        generation_config=generation)
        train = [c for r, c in self.datasets() if r.role == "train"]
        calls = [(c.display, {**base, "data": c.path, "data_display": c.display}) for c in train] or [("", base)]
        return self._run(name, calls, fail_fast)

    def model_config(self, fail_fast: bool) -> GateResult | None:
        """The base's generation config and context window against the config's sequence length."""
        model_dir, why = _find_folder(self.job, self.job.model, ("config.json",), "model")
        if model_dir is None:
            return _skip("model-config", why)
        length = self.job.max_seq_len
        kwargs: dict[str, Any] = {"model_dir": model_dir, "tokenizer": self.tokenizer()[0], "spec": prompt_spec(self.job),
                                  "max_seq_len": length.value if length else None}
        if length is not None and length.key_path:
            kwargs["max_seq_len_location"] = self.job.location(length.key_path)
        train = [c for r, c in self.datasets() if r.role == "train"]
        calls = [(c.display, {**kwargs, "data": c.path}) for c in train[:1]] or [("", kwargs)]
        return self._run("model-config", calls, fail_fast)

    def embeddings(self, fail_fast: bool) -> GateResult | None:
        """Untrained and new tokens, from the base's embedding rows (safetensors), when the weights are here."""
        model_dir, why = _find_folder(self.job, self.job.model, ("config.json",), "model")
        if model_dir is None or not any(model_dir.glob("*.safetensors")):
            return _skip("embeddings", why or f"no base model weights (*.safetensors) in {model_dir}: the embedding "
                         "rules read the embedding rows of the base")
        from sftgate.gates.tokenizer.trainable_embeddings import LoraEmbeddings

        targets = self.job.lora_targets.value if self.job.lora_targets else None
        lora = LoraEmbeddings(target_modules=tuple(targets) if isinstance(targets, list) else targets)
        train = [c for r, c in self.datasets() if r.role == "train"]
        kwargs = {"model_dir": model_dir, "tokenizer": self.tokenizer()[0], "spec": prompt_spec(self.job),
                  "lora": lora, "lora_location": self.job.location(self.job.lora_targets.key_path)
                  if self.job.lora_targets else self.job.location(())}
        calls = [(c.display, {**kwargs, "data": c.path}) for c in train[:1]] or [("", kwargs)]
        return self._run("embeddings", calls, fail_fast)

    def lora_targets(self, fail_fast: bool) -> GateResult | None:
        targets = self.job.lora_targets
        if targets is None:
            return None
        folder, why = _find_folder(self.job, self.job.model, ("config.json",), "model")
        if folder is None:
            return _skip("lora-targets", why)
        location = self.job.location(targets.key_path)
        kwargs = {"model_dir": folder, "target_modules": targets.value, "location": location}
        return self._run("lora-targets", [("", kwargs)], fail_fast, datasets=[])

    def labels(self, fail_fast: bool) -> GateResult | None:
        """The label gate on the tokenized data the trainer wrote (dataset_prepared_path, tokenized_path)."""
        prepared = self.job.prepared
        if prepared is None or not isinstance(prepared.value, str):
            return None
        key = dotted(prepared.key_path)
        path, _ = jobs.resolve(prepared.value, self.job.search_dirs)
        if path is None or not path.is_dir():
            return _skip("labels", f"{key} {prepared.value!r} does not exist yet: it is written when the trainer "
                         "preprocesses the data (`axolotl preprocess CONFIG`); the label rules need it")
        folder, why = self.tokenizer()
        if folder is None:
            return _skip("labels", why)
        model_dir, _ = _find_folder(self.job, self.job.model, ("config.json",), "model")
        base = {"tokenizer": folder, "model": model_dir, "spec": prompt_spec(self.job),
                "max_seq_len": self.job.max_seq_len.value if self.job.max_seq_len else None,
                "allow_prompt_training": bool(self.job.train_on_inputs and self.job.train_on_inputs.value)}
        calls = [(str(p), {**base, "data": p}) for p in prepared_datasets(path)]
        return self._run("labels", calls, fail_fast, datasets=[])


def prepared_datasets(path: Path) -> list[Path]:
    """The tokenized datasets under a prepared-data folder: itself, or (axolotl) one folder per dataset hash."""
    children = sorted(c for c in path.iterdir() if c.is_dir() and ((c / "state.json").is_file()
                                                                    or (c / "dataset_dict.json").is_file()))
    if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file() or not children:
        return [path]
    return children


def _files(path: Path) -> list[Path]:
    """A dataset path as files: itself, or a plain folder's data files (a save_to_disk folder stays whole)."""
    if not path.is_dir() or (path / "dataset_info.json").is_file() or (path / "state.json").is_file():
        return [path]
    found = sorted(p for p in path.iterdir() if p.suffix.lower() in (".jsonl", ".json", ".parquet"))
    return found or [path]


def _no_data_reason(job: jobs.PeerJob) -> str:
    if not job.datasets:
        return "the config names no dataset"
    why = [d.note or f"{d.value!r} does not exist" for d in job.datasets]
    return "no local dataset to read: " + "; ".join(why[:3])


def _find_folder(job: jobs.PeerJob, setting: jobs.Setting | None, wanted: tuple[str, ...],
                 what: str) -> tuple[Path | None, str]:
    """A model or tokenizer folder the config names, found locally or in the HF cache, never downloaded."""
    if setting is None or not isinstance(setting.value, str):
        return None, f"the config names no {what}"
    value = setting.value
    local, _ = jobs.resolve(value, job.search_dirs)
    if local is not None and local.is_dir():
        if any((local / name).exists() for name in wanted):
            return local, ""
        return None, f"{dotted(setting.key_path)} {value!r} has no {' / '.join(wanted)}"
    cached = cached_snapshot(value, job.revision)
    if cached is not None and any((cached / name).exists() for name in wanted):
        return cached, ""
    if not is_valid_repo_id(value, require_namespace=True):
        return None, f"no {what} available offline: {value!r} is neither a local folder nor a Hub ID (see model-id)"
    return None, (f"no {what} available offline: {value!r} is not a local folder and not in the Hugging Face "
                  f"cache (download it first: `hf download {value}`)")
