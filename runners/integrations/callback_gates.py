"""The gates :class:`~sftgate.runners.integrations.callback.SftgateCallback` runs, on what a Trainer holds.

- :func:`draw_batches`: K collated batches from the trainer's own train dataloader, with every
  random state put back, so training sees the same order as without the callback;
- :func:`train_begin_report`: the label gate on those batches (and on the prepared dataset's first
  rows when they hold a mask column the dataloader drops: :func:`masked_rows`), and the eos /
  prompt-alignment gates on the processing class and the model's generation config (saved to a
  temp folder, so the gates read exactly what a release would ship);
- :func:`evaluate_report`: greedy generation of the fixed cases, strict-json and eos-behaviour;
- :func:`save_report`: adapter completeness of a checkpoint, against the model's own modules;
- :func:`broadcast` and :func:`write_and_print`: the verdict to every rank, the report to files.
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Stage
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.report import Report, to_json, to_table, write_junit


def tokenizer_of(processing_class: Any) -> Any:
    """The tokenizer of a processing class (a processor's ``.tokenizer``), or ``None``."""
    if processing_class is None:
        return None
    inner = getattr(processing_class, "tokenizer", None)
    return inner if inner is not None and hasattr(inner, "convert_ids_to_tokens") else processing_class


def draw_batches(dataloader: Any, k: int) -> list[dict[str, Any]]:
    """The first ``k`` batches of a fresh pass over ``dataloader`` as numpy arrays, RNG states restored.

    Accelerate's wrapper is bypassed for its base loader (same sampler, same collator, no device
    copy, no gradient-state bookkeeping, no collective call), so only the main process draws.
    """
    import numpy as np
    import torch

    loader = getattr(dataloader, "base_dataloader", None) or dataloader
    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    generators = [g for g in (getattr(getattr(loader, "sampler", None), "generator", None),
                              getattr(loader, "generator", None)) if isinstance(g, torch.Generator)]
    saved = [g.get_state() for g in generators]
    out: list[dict[str, Any]] = []
    try:
        iterator = iter(loader)
        for _ in range(k):
            try:
                batch = next(iterator)
            except StopIteration:
                break
            out.append({name: value.detach().cpu().numpy() if hasattr(value, "detach") else value
                        for name, value in batch.items()})
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        for generator, state in zip(generators, saved, strict=True):
            generator.set_state(state)
    return out


def masked_rows(dataset: Any, rows: int) -> Any:
    """The first ``rows`` rows of a prepared ``datasets.Dataset`` as Arrow, when it holds a mask column
    the dataloader drops (TRL keeps ``completion_mask`` when ``completion_only_loss=False``), else None."""
    names = set(getattr(dataset, "column_names", None) or ())
    if "input_ids" not in names or not names & {"completion_mask", "assistant_masks"}:
        return None
    keep = [c for c in ("input_ids", "labels", "attention_mask", "completion_mask", "assistant_masks", "seq_lengths")
            if c in names]
    table = dataset.select(range(min(rows, len(dataset)))).select_columns(keep).with_format("arrow")[:]
    return table.combine_chunks().to_batches()


def train_begin_report(batches: list[dict[str, Any]], tokenizer: Any, model: Any, *, max_seq_len: int | None,
                       allow_prompt_training: bool, spec: Any = None, dataset_rows: Any = None) -> Report:
    """The label gate on the drawn batches (and on the prepared dataset's first rows when they carry
    a mask the batches lack) plus the template gates on the processing class."""
    from sftgate.gates.frame import registry
    from sftgate.gates.tokenizer import eos, labels, prompt_alignment
    from sftgate.gates.tokenizer.label_input import from_padded

    report = Report(command="SftgateCallback on_train_begin")
    rows, token_batches = 1, []
    for batch in batches:
        token_batches.append(from_padded(batch, first_row=rows))
        rows += len(batch["input_ids"])
    gate = registry.get("labels")
    report.add(run_gate(gate.name, gate.stage, labels.check_batches, batches=token_batches, tokenizer=tokenizer,
                        source="train_dataloader", spec=spec, max_seq_len=max_seq_len,
                        allow_prompt_training=allow_prompt_training))
    if dataset_rows:
        from sftgate.gates.tokenizer.label_input import from_arrow

        prepared, first = [], 1
        for arrow_batch in dataset_rows:
            prepared.append(from_arrow(arrow_batch, first_row=first, display="train_dataset"))
            first += arrow_batch.num_rows
        report.add(run_gate(gate.name, gate.stage, labels.check_batches, batches=prepared, tokenizer=tokenizer,
                            source="train_dataset", spec=spec, max_seq_len=max_seq_len,
                            allow_prompt_training=allow_prompt_training))
    with tempfile.TemporaryDirectory(prefix="sftgate-callback-") as tmp:
        folder = Path(tmp)
        tokenizer.save_pretrained(folder)
        generation = getattr(model, "generation_config", None)
        if generation is not None:
            generation.save_pretrained(folder)
        source = "processing_class"
        for name, module, extra in (("prompt-alignment", prompt_alignment, {}),
                                    ("eos", eos, {"generation_config": folder / "generation_config.json"
                                                  if generation is not None else None})):
            spec_ = registry.get(name)
            report.add(run_gate(spec_.name, spec_.stage, module.check, tokenizer=folder, spec=spec,
                                template_source=source, **extra))
    return report


def evaluate_report(model: Any, tokenizer: Any, cases: list[Any], schema: Any, *, max_new_tokens: int,
                    batch_size: int, spec: Any = None) -> tuple[Report, dict[str, float]]:
    """Greedy generations of the fixed cases, strict-json and eos-behaviour; the two rates."""
    from sftgate.gates.adapter import eos_behaviour, strict_json
    from sftgate.gates.tokenizer.prompt_spec import PromptSpec
    from sftgate.runners.work.generate import generate_cases

    records = generate_cases(model, tokenizer, cases, spec or PromptSpec(), max_new_tokens=max_new_tokens,
                             batch_size=batch_size)
    report = Report(command="SftgateCallback on_evaluate")
    strict = report.add(run_gate(strict_json.GATE, Stage.ADAPTER, strict_json.check_records, records=records,
                                 schema=schema, source="fixed cases", min_pass_rate=0.0))
    stops = report.add(run_gate(eos_behaviour.GATE, Stage.ADAPTER, eos_behaviour.check, records=records,
                                max_new_tokens=max_new_tokens, min_eos_rate=0.0, source="fixed cases"))
    rates = {"sftgate/pass_rate": float(strict.metrics.get("pass_rate", 0.0)),
             "sftgate/eos_stop_rate": float(stops.metrics.get("eos_rate", 0.0))}
    return report, rates


def lora_base_shapes(model: Any) -> dict[str, tuple[int, int]] | None:
    """``{module: (out, in)}`` of the base weights LoRA wraps, as the adapter names them (ZeRO-3's
    partitioned parameters report their full shape in ``ds_shape``)."""
    shapes: dict[str, tuple[int, int]] = {}
    for name, module in getattr(model, "named_modules", lambda: [])():
        base = getattr(module, "base_layer", None)
        if base is None or not hasattr(module, "lora_A"):
            continue
        weight = getattr(base, "weight", None)
        shape = tuple(getattr(weight, "ds_shape", None) or getattr(weight, "shape", None) or ())
        if len(shape) == 2:
            key = name[len("base_model.model."):] if name.startswith("base_model.model.") else name
            shapes[key] = (int(shape[0]), int(shape[1]))
    return shapes or None


def save_report(folder: Path, model: Any) -> Report:
    from sftgate.gates.adapter import completeness

    report = Report(command=f"SftgateCallback on_save {folder}")
    report.add(run_gate(completeness.GATE, Stage.ADAPTER, completeness.check, adapter_dir=folder,
                        base_shapes=lora_base_shapes(model)))
    return report


def broadcast(value: Any) -> Any:
    """``value`` from rank 0 on every rank (torch.distributed when initialised; else as is)."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch without distributed
        return value
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]
    return value


def write_and_print(report: Report, folder: Path | None, name: str, *, say: bool) -> Path | None:
    """Write ``name``.json and ``name``.xml under ``folder``; print the table on stderr when ``say``."""
    path = None
    if folder is not None:
        from sftgate.gates.readers import atomic

        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.json"
        atomic.write_text(path, to_json(report))
        write_junit(report, str(folder / f"{name}.xml"))
    if say:
        where = f"\nsftgate report: {path}" if path is not None else ""
        print(to_table(report) + where, file=sys.stderr, flush=True)
    return path
