"""Gate ``labels``: the labels another trainer built (TRL, axolotl, LLaMA-Factory...) train what they should.

Reads tokenized data (``input_ids`` + ``labels``, and ``attention_mask``, ``position_ids``,
``completion_mask`` / ``assistant_masks``, ``seq_lengths`` when present: :mod:`~sftgate.gates.
readers.tokenized_io`) or a trainer's own batches, and finds the roles from the ids alone with the
turn markers learned from the tokenizer's chat template (:mod:`~sftgate.gates.tokenizer.
turn_markers`). Vectorised over Arrow offsets (:mod:`~sftgate.gates.tokenizer.label_scan`), in
constant memory. One finding per rule, with the count, the share, the first rows and the tokens
around the first problems. ``eos_masked`` and ``eos_not_appended`` are the eos gate's rules
(EOS003, EOS002), here for every assistant turn of every row.

::

    sftgate labels ./last_run_prepared/abc123 --tokenizer ./tok
    sftgate labels tokenized.parquet --tokenizer ./tok --model ./base --show 2
    sftgate check sftgate.yaml        # data.prepared + model.tokenizer / model.id
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, InputError, Rule, Severity
from sftgate.gates.readers import tokenizer_io
from sftgate.gates.tokenizer.eos import EOS_MASKED, EOS_NOT_APPENDED
from sftgate.gates.tokenizer.label_findings import rule_findings
from sftgate.gates.tokenizer.label_scan import TokenBatch, scan_batch
from sftgate.gates.tokenizer.label_tally import LabelTally
from sftgate.gates.tokenizer.prompt_spec import PromptSpec, spec_from_config
from sftgate.gates.tokenizer.token_encoding import token_strings
from sftgate.gates.tokenizer.turn_markers import learn_markers

GATE = "labels"
COALESCE_ROWS = 4096
SCAN_THREADS = 2

NOTHING_TRAINED = Rule(
    "LBL001", "nothing_trained", Severity.ERROR, GATE,
    "an example whose labels are all masked: it trains nothing",
    "A row (or a packed example) with every label -100 costs compute and teaches nothing: the "
    "answer was truncated away, or the masking is wrong (a template whose assistant turns are "
    "never found). A batch of only such rows gives a NaN loss.",
    "Raise max_seq_len / cutoff_len or drop the rows whose prompt fills it; check the assistant "
    "masking with `sftgate labels DATA --tokenizer DIR --show 1`.",
    "labels: [-100, -100, ..., -100]   # the completion was cut at max_length",
)
PROMPT_TRAINED = Rule(
    "LBL002", "prompt_trained", Severity.ERROR, GATE,
    "tokens of system, user or tool turns are supervised",
    "The model learns to write the user's turns, and the loss is dominated by prompts it will "
    "never have to produce. Chat templates without {% generation %} make transformers return an "
    "all-ones assistant mask silently; train_on_inputs and completion_only_loss=False do it on purpose.",
    "TRL: assistant_only_loss=True (messages, a template with {% generation %}) or "
    "completion_only_loss=True (prompt/completion); axolotl: train_on_inputs: false and roles_to_train: "
    "[assistant]; LLaMA-Factory: train_on_prompt: false. If you mean it: --allow-prompt-training.",
    "<|im_start|>user\\nWhat is 2+2?<|im_end|>   # labels equal to the ids",
)
LABELS_SHIFTED = Rule(
    "LBL003", "labels_shifted", Severity.ERROR, GATE,
    "labels are already shifted by one relative to input_ids",
    "transformers' causal-LM loss shifts labels itself (logits[i] predicts labels[i + 1]). "
    "Labels shifted beforehand train the model to predict the token after next.",
    "Build labels aligned with input_ids (labels[i] = input_ids[i] or -100); let the model shift.",
    "input_ids: [5, 6, 7]   labels: [6, 7, -100]",
)
PAD_TRAINED = Rule(
    "LBL004", "pad_trained", Severity.ERROR, GATE,
    "padding positions are supervised",
    "A label on a position with attention_mask 0 (or on pad ids after the end of the sequence) "
    "trains the model to emit padding; with pad == eos it also blurs when to stop.",
    "Set labels to -100 wherever attention_mask is 0 (DataCollatorForSeq2Seq pads labels with "
    "-100; TRL's collator does it for you).",
    "attention_mask: [1, 1, 0, 0]   labels: [5, 6, 0, 0]",
)
PACKING_LEAK = Rule(
    "LBL005", "packing_leak", Severity.ERROR, GATE,
    "several examples share a row and nothing stops attention from crossing them",
    "Packed rows hold several examples; without position_ids that restart at 0 per example (or "
    "seq_lengths / cu_seq_lens) each example attends to the ones before it, and the model learns "
    "from text it will never see at inference (measured: loss 37.6 packed vs 44.1 unpacked).",
    "TRL: packing=True with packing_strategy='bfd' (padding-free, position_ids reset) instead of "
    "'wrapped'; axolotl: sample_packing with flash attention; or packing off.",
    "<s> q1 a1 </s><s> q2 a2 </s>   position_ids 0..N without a reset",
)
COMPLETION_TRUNCATED = Rule(
    "LBL006", "completion_truncated", Severity.ERROR, GATE,
    "a row ends at max length inside a supervised span: its end-of-turn token was cut",
    "Truncation at max_length keeps the answer's start and drops its end-of-turn token: each such "
    "row teaches the model to keep going.",
    "Raise max_length / sequence_len / cutoff_len, or drop or split the long examples.",
    "max_length: 512 with answers of 600 tokens",
)
TOKEN_OUT_OF_RANGE = Rule(
    "LBL007", "token_out_of_range", Severity.ERROR, GATE,
    "an input id or label is at or beyond the model's vocabulary (or negative)",
    "An id past the embedding matrix crashes training with an index error on GPU (a device-side "
    "assert), or reads garbage; it means the data was tokenized with another tokenizer or tokens "
    "were added without resizing the embeddings.",
    "Tokenize with the model's own tokenizer; after adding tokens call model.resize_token_embeddings(len(tokenizer)).",
    "input id 128256 with vocab_size 128256",
)

RULES = (NOTHING_TRAINED, PROMPT_TRAINED, LABELS_SHIFTED, PAD_TRAINED, PACKING_LEAK, COMPLETION_TRUNCATED,
         TOKEN_OUT_OF_RANGE)
BY_NAME = {rule.name: rule for rule in (*RULES, EOS_MASKED, EOS_NOT_APPENDED)}


# --------------------------------------------------------------------------- config


def from_config(config: Any) -> dict[str, Any] | None:
    """Kwargs for :func:`check` when the config names a prepared dataset (``data.prepared``)."""
    data = config.require_file("data.prepared")
    if data is None:
        return None
    model = tokenizer_io.model_dir_from_config(config)
    return {
        "data": data,
        "tokenizer": tokenizer_io.tokenizer_dir_from_config(config),
        "model": model if model is not None and (model / "config.json").is_file() else None,
        "spec": spec_from_config(config),
        "max_seq_len": config.get("train.max_seq_len"),
    }


def model_vocab_size(model: str | Path) -> int:
    """The vocabulary size of a model folder's ``config.json`` (``vocab_size``, or its text config's)."""
    path = Path(model) / "config.json"
    if not path.is_file():
        raise InputError(f"{path}: no config.json in the model folder", hint="--model is the base model's folder")
    value = tokenizer_io.read_json_file(path)
    if isinstance(value, dict):
        for section in (value, value.get("text_config") or {}):
            size = section.get("vocab_size") if isinstance(section, dict) else None
            if isinstance(size, int) and size > 0:
                return size
    raise InputError(f"{path}: no vocab_size", hint="the model's config.json states vocab_size")


# --------------------------------------------------------------------------- the gate


def check(
    *,
    data: str | Path,
    tokenizer: str | Path,
    model: str | Path | None = None,
    spec: PromptSpec | None = None,
    max_seq_len: int | None = None,
    split: str | None = None,
    allow_prompt_training: bool = False,
    max_truncated_share: float = 0.0,
    max_rows: int | None = None,
    keep_rows: int = 0,
    kept: dict[int, tuple[list[int], list[int]]] | None = None,
    display: str | None = None,
    progress: bool = False,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Yield the label findings of the tokenized dataset ``data`` under the tokenizer folder ``tokenizer``.

    ``model`` (a folder with config.json) bounds the ids (``token_out_of_range``; default: the
    tokenizer's size). ``max_seq_len`` is the trainer's max length (default: the longest row).
    ``keep_rows`` rows with problems are copied whole into ``kept`` (for the token view).
    """
    from sftgate.gates.readers.tokenized_io import open_tokenized
    from sftgate.gates.tokenizer.label_input import from_arrow, labels_source

    tok = tokenizer_io.load_tokenizer_cached(Path(tokenizer))
    source = open_tokenized(data, split=split, display=display)
    vocab = model_vocab_size(model) if model is not None else None
    metrics = metrics if metrics is not None else {}
    metrics["labels_source"] = labels_source(set(source.columns))
    metrics["columns"] = list(source.columns)
    if source.split:
        metrics["split"] = source.split

    def batches() -> Iterator[TokenBatch]:
        row = 1
        bar = _bar(progress)
        try:
            for record_batch in coalesce(source, max_rows):
                yield from_arrow(record_batch, first_row=row, display=source.display)
                row += record_batch.num_rows
                if bar is not None:
                    bar.update(record_batch.num_rows)
        finally:
            if bar is not None:
                bar.close()

    yield from check_batches(
        batches(), tok, source=source.display, spec=spec, vocab_size=vocab, max_seq_len=max_seq_len,
        allow_prompt_training=allow_prompt_training, max_truncated_share=max_truncated_share,
        keep_rows=keep_rows, kept=kept, metrics=metrics,
    )


def coalesce(batches: Iterable[Any], max_rows: int | None = None, rows: int = COALESCE_ROWS) -> Iterator[Any]:
    """Arrow record batches joined to about ``rows`` rows each (fewer, larger numpy passes), at most
    ``max_rows`` rows in all."""
    import pyarrow as pa

    pending: list[Any] = []
    held = seen = 0
    for batch in batches:
        if max_rows is not None and seen + batch.num_rows > max_rows:
            batch = batch.slice(0, max_rows - seen)
        seen += batch.num_rows
        pending.append(batch)
        held += batch.num_rows
        if held >= rows:
            yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
            pending, held = [], 0
        if max_rows is not None and seen >= max_rows:
            break
    if held:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def _bar(progress: bool) -> Any:
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(desc="labels", unit=" rows", leave=False)


def _scanned(batches: Iterable[TokenBatch], markers: Any, pad_id: int | None, limit: int) -> Iterator[tuple[TokenBatch, Any]]:
    """``(batch, hits)`` in order; batches are scanned two at a time in threads (numpy releases the
    GIL in its loops, so two cores share the work) while the caller reads and adds up."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from sftgate.gates.readers.worker_count import allowed_cpus

    workers = min(SCAN_THREADS, len(allowed_cpus()))
    if workers < 2:
        for batch in batches:
            yield batch, scan_batch(batch, markers, pad_id=pad_id, vocab_limit=limit)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[tuple[TokenBatch, Any]] = deque()
        for batch in batches:
            pending.append((batch, pool.submit(scan_batch, batch, markers, pad_id=pad_id, vocab_limit=limit)))
            if len(pending) > workers:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def check_batches(
    batches: Iterable[TokenBatch],
    tokenizer: Any,
    *,
    source: str,
    spec: PromptSpec | None = None,
    vocab_size: int | None = None,
    max_seq_len: int | None = None,
    allow_prompt_training: bool = False,
    max_truncated_share: float = 0.0,
    keep_rows: int = 0,
    kept: dict[int, tuple[list[int], list[int]]] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """The gate on any batches (a dataset's, or a trainer's dataloader's) under a tokenizer object."""
    metrics = metrics if metrics is not None else {}
    start = time.perf_counter()
    markers = learn_markers(tokenizer, spec)
    pad_id = next((v for v in (getattr(tokenizer, "pad_token_id", None), getattr(tokenizer, "eos_token_id", None))
                   if isinstance(v, int)), None)
    limit = vocab_size if vocab_size is not None else len(tokenizer)
    tally = LabelTally(max_seq_len=max_seq_len, keep_rows=keep_rows)
    for batch, hits in _scanned(batches, markers, pad_id, limit):
        tally.add(batch, hits)
    summary = tally.finish()
    figures = summary["figures"]
    if not figures.get("rows"):
        raise InputError(f"{source}: no rows to check", hint="the tokenized dataset is empty")
    seconds = time.perf_counter() - start
    metrics.update(figures)
    metrics.update({
        "trained_share": round(figures["trained_tokens"] / max(figures["tokens"], 1), 6),
        "max_len": summary["max_len"],
        "vocab_limit": limit,
        "turn_markers": {role: token_strings(tokenizer, ids) for role, ids in markers.headers},
        "end_of_turn_tokens": token_strings(tokenizer, markers.end_of_turn),
        "roles_checked": markers.has_roles,
        "seconds": round(seconds, 3),
        "rows_per_second": round(figures["rows"] / seconds, 1) if seconds > 0 else None,
        "counts": {name: tally_.rows for name, tally_ in summary["rules"].items()},
    })
    if markers.problem:
        metrics["roles_problem"] = markers.problem
    if kept is not None:
        kept.update(summary["kept"])
    summary["vocab_limit"] = limit
    yield from rule_findings(
        tokenizer, summary, BY_NAME, source=source, total=figures["rows"],
        allow_prompt_training=allow_prompt_training, max_truncated_share=max_truncated_share,
    )
