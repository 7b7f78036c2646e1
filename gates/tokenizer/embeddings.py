"""Gate ``embeddings``: the tokens a fine-tune relies on have trained rows the base model can serve.

Read from the base model's ``config.json`` and safetensors headers, and only the rows needed
(:mod:`sftgate.gates.readers.safetensors_rows`: each row at its byte offset, never a whole matrix):

- ``untrained_token``: a control token the chat template writes, or a special/added token the
  data uses, has an embedding or lm_head row near zero, non-finite, or identical to another's;
- ``vocab_mismatch``: ``len(tokenizer)``, ``config.vocab_size`` and the embedding rows disagree
  (a token id with no row; a config that does not describe its weights);
- ``new_tokens_not_trained``: tokens added to the tokenizer that the LoRA config never trains;
- ``tied_embeddings_broken``: ``tie_word_embeddings`` and the saved tensors disagree, or the LoRA
  config trains one side of a tied pair.

Each is an error, except ``untrained_token`` when the config trains those rows (a warning).

::

    sftgate check sftgate.yaml          # model.id (local or cached weights), model.tokenizer, data.train, lora.*
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, GateSkipped, Rule, Severity
from sftgate.gates.readers import tokenizer_io
from sftgate.gates.readers.safetensors_rows import TensorRef, UnsupportedDtype, WeightFiles
from sftgate.gates.tokenizer import vocab
from sftgate.gates.tokenizer.embedding_rows import DEFAULT_MIN_NORM_RATIO, rows_differ, untrained_rows
from sftgate.gates.tokenizer.model_facts import ModelFacts
from sftgate.gates.tokenizer.prompt_spec import PromptSpec, spec_from_config
from sftgate.gates.tokenizer.trainable_embeddings import Coverage, LoraEmbeddings, runner_keeps_ties

GATE = "embeddings"
MAX_FINDINGS = 20

UNTRAINED_TOKEN = Rule(
    "EMB001", "untrained_token", Severity.ERROR, GATE,
    "a control token the template writes, or a special token the data uses, has an untrained embedding or lm_head row",
    "Base models ship rows they never trained: base Llama 3's <|eot_id|>, <|start_header_id|> and "
    "<|end_header_id|> are near zero (unsloth #658, torchtune #2429). A LoRA on the attention and MLP "
    "layers leaves those rows where they are: the model reads the control token as nothing, bf16/fp16 "
    "training can go NaN, and a model that must emit <|eot_id|> to stop never does.",
    "Train those rows: lora.trainable_token_indices: [ids] (peft trains only these rows; the suggestion "
    "lists them), or lora.modules_to_save: [embed_tokens, lm_head]; or fine-tune the instruct model, "
    "whose template tokens are trained.",
    "<|eot_id|> (id 128009): embedding row all zeros in Meta-Llama-3-8B",
)
VOCAB_MISMATCH = Rule(
    "EMB002", "vocab_mismatch", Severity.ERROR, GATE,
    "len(tokenizer), config.vocab_size and the embedding rows disagree (or an adapter's embeddings differ from its base)",
    "A token id at or past the last embedding row indexes out of range (a CUDA device-side assert in the "
    "middle of a run); a config.json whose vocab_size is not the weights' fails to load; an adapter saved "
    "with resized embeddings (128320 rows) neither loads onto its 128256-row base nor into vLLM "
    "(LlamaFactory #7997).",
    "Resize the base and save it (model.resize_token_embeddings(len(tokenizer)); model.save_pretrained(DIR)), "
    "train from that folder and train the new rows (new_tokens_not_trained); ship a resized adapter with "
    "its resized base, or ship the merged model.",
    "tokenizer has 128320 tokens, model.embed_tokens.weight has 128256 rows",
)
NEW_TOKENS_NOT_TRAINED = Rule(
    "EMB003", "new_tokens_not_trained", Severity.ERROR, GATE,
    "tokens added to the tokenizer are trained with LoRA, but nothing trains their embedding rows",
    "Added tokens get fresh rows (random, or the mean of the others). LoRA on attention and MLP never "
    "updates them: after training the new tokens still mean nothing and the model cannot emit them "
    "(LlamaFactory #7997: added tokens, LoRA, and an adapter that does not fit the base).",
    "Train their rows: lora.trainable_token_indices: [ids] (rows only; a dict {embed_tokens: [...], "
    "lm_head: [...]} for untied heads), or lora.modules_to_save: [embed_tokens, lm_head] (full copies: a "
    "large adapter that vLLM refuses).",
    "<tool_call> (id 151665) added; lora.target_modules: [q_proj, v_proj], no modules_to_save",
)
TIED_EMBEDDINGS_BROKEN = Rule(
    "EMB004", "tied_embeddings_broken", Severity.ERROR, GATE,
    "tie_word_embeddings and the saved embedding / lm_head tensors disagree, or training unties them",
    "With tie_word_embeddings the input embedding and lm_head are one tensor. Trained or saved apart they "
    "come apart: a checkpoint holding both with different values loads untied in transformers, while "
    "serving stacks that trust the flag drop lm_head (transformers #45127); tie_word_embeddings false "
    "with no lm_head in the weights loads a random lm_head: gibberish (transformers #43429).",
    "Train both sides together (lora.modules_to_save: [embed_tokens, lm_head]; sftgate's runner keeps them "
    "tied) and make config.json tell the truth: tie_word_embeddings false when both tensors are saved and "
    "differ, true when only the embedding is saved.",
    'config.json: "tie_word_embeddings": true, lm_head.weight differs from model.embed_tokens.weight',
)

RULES = (UNTRAINED_TOKEN, VOCAB_MISMATCH, NEW_TOKENS_NOT_TRAINED, TIED_EMBEDDINGS_BROKEN)


# --------------------------------------------------------------------------- config


def from_config(config: Any) -> dict[str, Any] | None:
    """Kwargs for :func:`check`; GateSkipped when no base weights or tokenizer are available offline."""
    from sftgate.gates.readers.model_files import weights_dir_from_config

    model_dir = weights_dir_from_config(config)
    if model_dir is None:
        raise GateSkipped(
            f"no base model weights offline for '{config.get('model.id')}': the embeddings gate reads the "
            "embedding rows from the base's safetensors (a local model.id, or the Hugging Face cache: "
            f"`hf download {config.get('model.id')} --include config.json '*.safetensors*'`)"
        )
    tokenizer = tokenizer_io.tokenizer_dir_from_config(config)
    return {
        "model_dir": model_dir,
        "tokenizer": tokenizer,
        "data": config.require_file("data.train"),
        "spec": spec_from_config(config),
        "lora": LoraEmbeddings.from_config(config),
        "lora_location": config.location("lora"),
    }


# --------------------------------------------------------------------------- the gate


def check(
    *,
    model_dir: str | Path,
    tokenizer: str | Path | None = None,
    data: str | Path | None = None,
    spec: PromptSpec | None = None,
    lora: LoraEmbeddings | None = None,
    lora_location: str = "lora",
    min_norm_ratio: float = DEFAULT_MIN_NORM_RATIO,
    max_records: int | None = None,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Check the base in ``model_dir`` against the tokenizer folder (default: the model folder),
    the training ``data`` and the LoRA settings ``lora``."""
    metrics = metrics if metrics is not None else {}
    folder = Path(model_dir)
    facts = ModelFacts.read(folder)
    weights = WeightFiles.open(folder)
    embed = weights.find_embedding(facts.vocab_size)
    if embed is None:
        raise GateSkipped(f"{folder}: no input embedding among {len(weights.tensors)} tensors "
                          "(embed_tokens, wte, word_embeddings, ...)")
    head = weights.find_head(embed.rows)
    head = None if head is not None and head.name == embed.name else head
    spec, lora = spec or PromptSpec(), lora or LoraEmbeddings()
    tok_dir = Path(tokenizer) if tokenizer is not None else folder
    tok = tokenizer_io.load_tokenizer_cached(tok_dir, chat_template=spec.chat_template)
    coverage = lora.coverage(embed.module, head.module if head else "lm_head", tied=facts.tie_word_embeddings)
    metrics.update(embedding=embed.name, lm_head=head.name if head else None, rows=embed.rows,
                   tokenizer_tokens=len(tok), config_vocab_size=facts.vocab_size,
                   tie_word_embeddings=facts.tie_word_embeddings, dtype=embed.dtype)

    yield from _vocab(facts, embed, head, tok, tok_dir)
    yield from _tied(weights, facts, embed, head, lora, lora_location)

    found = vocab.data_tokens(tok, data, max_records=max_records) if data is not None else None
    used = vocab.template_tokens(tok, spec, chat=found is None or found.chat > 0, plain=found is None or found.plain > 0)
    if found is not None:
        used = {**{i: f"the data ({data}:{found.first_line[i]})" for i in found.counts}, **used}
        metrics["data_records"] = found.records
    names = vocab.token_names(tok)
    metrics["checked_tokens"] = [names.get(i, str(i)) for i in sorted(used)]
    yield from _new_tokens(tok, tok_dir, folder, embed, coverage, lora_location, set(used))
    yield from _untrained(weights, embed, head, used, names, coverage, min_norm_ratio, metrics)


# --------------------------------------------------------------------------- vocabulary


def _vocab(facts: ModelFacts, embed: TensorRef, head: TensorRef | None, tok: Any, tok_dir: Path) -> Iterator[Finding]:
    rows = embed.rows
    if facts.vocab_size is not None and facts.vocab_size != rows:
        yield VOCAB_MISMATCH.finding(
            f"config.json says vocab_size {facts.vocab_size}, but {embed.name} has {rows} rows: the config does "
            "not describe its weights (from_pretrained fails with a size mismatch)",
            f"{facts.path}:vocab_size", suggestion=f'"vocab_size": {rows}',
            evidence={"vocab_size": facts.vocab_size, "embedding_rows": rows},
        )
    if head is not None and head.rows != rows:
        yield VOCAB_MISMATCH.finding(
            f"{head.name} has {head.rows} rows but {embed.name} has {rows}: logits and inputs index different vocabularies",
            f"{head.file}:{head.name}", evidence={"lm_head_rows": head.rows, "embedding_rows": rows},
        )
    beyond = vocab.tokens_beyond(tok, rows)
    if beyond:
        sample = ", ".join(f"{t!r} (id {i})" for i, t in beyond[:5])
        yield VOCAB_MISMATCH.finding(
            f"the tokenizer has {len(tok)} tokens but {embed.name} has {rows} rows: {len(beyond)} token ids have "
            f"no embedding row, e.g. {sample}",
            str(tok_dir), suggestion=f"model.resize_token_embeddings({len(tok)}), saved as the base",
            evidence={"tokenizer_tokens": len(tok), "embedding_rows": rows, "tokens": [t for _, t in beyond[:20]]},
        )


def _tied(weights: WeightFiles, facts: ModelFacts, embed: TensorRef, head: TensorRef | None,
          lora: LoraEmbeddings, lora_location: str) -> Iterator[Finding]:
    yield from tied_weights_findings(weights, facts, embed, head)
    if facts.tie_word_embeddings and runner_keeps_ties() is False:
        for problem in lora.split_tied(embed.module, head.module if head else "lm_head"):
            yield TIED_EMBEDDINGS_BROKEN.finding(
                f"tie_word_embeddings is true but {problem} and the installed peft cannot keep the pair tied "
                "(ensure_weight_tying needs peft >= 0.18): training unties them, and the merged model's config "
                "still says tied",
                lora_location, suggestion=f"lora.modules_to_save: [{embed.module.split('.')[-1]}, lm_head]",
                evidence={"tie_word_embeddings": True, "problem": problem},
            )


def tied_weights_findings(weights: WeightFiles, facts: ModelFacts, embed: TensorRef,
                          head: TensorRef | None) -> Iterator[Finding]:
    """``tied_embeddings_broken`` for a saved model folder (the base, or a merged model)."""
    if facts.tie_word_embeddings and head is not None:
        differ = rows_differ(weights, embed, head, [])
        if differ:
            yield TIED_EMBEDDINGS_BROKEN.finding(
                f"tie_word_embeddings is true but {head.name} and {embed.name} are both saved and differ "
                f"({'shape or dtype' if differ == [-1] else f'{len(differ)} sampled rows'}): a loader that trusts the "
                "flag drops the trained lm_head",
                f"{facts.path}:tie_word_embeddings", suggestion='"tie_word_embeddings": false',
                evidence={"differing_rows": differ[:20], "lm_head": head.name, "embedding": embed.name},
            )
    if not facts.tie_word_embeddings and head is None:
        yield TIED_EMBEDDINGS_BROKEN.finding(
            f"tie_word_embeddings is false but the weights hold no lm_head, only {embed.name}: transformers "
            "initialises lm_head randomly at load (the model writes gibberish)",
            f"{facts.path}:tie_word_embeddings", suggestion='"tie_word_embeddings": true',
            evidence={"embedding": embed.name, "tensors": len(weights.tensors)},
        )


# --------------------------------------------------------------------------- new and untrained tokens


def _new_tokens(tok: Any, tok_dir: Path, model_dir: Path, embed: TensorRef, coverage: Coverage,
                lora_location: str, used: set[int]) -> Iterator[Finding]:
    new = dict(vocab.tokens_beyond(tok, embed.rows))
    if tok_dir.resolve() != model_dir.resolve() and tokenizer_io.tokenizer_files(model_dir):
        base_tok = tokenizer_io.load_tokenizer_cached(model_dir)
        new.update(vocab.new_tokens(tok, base_tok))
    untrained = sorted(i for i in new if not (coverage.input(i) and coverage.output(i)))
    if not untrained:
        return
    sample = ", ".join(f"{new[i]!r} (id {i})" for i in untrained[:5])
    yield NEW_TOKENS_NOT_TRAINED.finding(
        f"{len(untrained)} tokens were added to the tokenizer ({sample}) but the LoRA config trains none of "
        "their embedding rows: they stay at their initial values",
        lora_location, suggestion=f"lora.trainable_token_indices: {untrained[:64]}",
        evidence={"count": len(untrained), "tokens": [new[i] for i in untrained[:20]],
                  "used_by_training": sorted(new[i] for i in untrained if i in used)[:20]},
    )


def _untrained(weights: WeightFiles, embed: TensorRef, head: TensorRef | None, used: dict[int, str],
               names: dict[int, str], coverage: Coverage, ratio: float, metrics: dict[str, Any]) -> Iterator[Finding]:
    sides = [(embed, "embedding", coverage.input)] + ([(head, "lm_head", coverage.output)] if head else [])
    bad: dict[int, list[tuple[str, Any]]] = {}
    for ref, side, _ in sides:
        try:
            verdicts, median = untrained_rows(weights, ref, list(used), min_norm_ratio=ratio)
        except UnsupportedDtype as exc:
            metrics[f"{side}_skipped"] = str(exc)
            continue
        metrics[f"{side}_median_norm"] = round(median, 6)
        for v in verdicts:
            if v.reason is not None:
                bad.setdefault(v.token, []).append((side, v))
    if not bad:
        return
    trained_by = {side: fn for _, side, fn in sides}
    ids = sorted(bad)
    metrics["untrained_tokens"] = [names.get(i, str(i)) for i in ids]
    suggestion = f"lora.trainable_token_indices: {ids[:64]}" if head is None else (
        f"lora.trainable_token_indices: {{{embed.module.split('.')[-1]}: {ids[:64]}, lm_head: {ids[:64]}}}")
    for i in ids[:MAX_FINDINGS]:
        where = bad[i]
        covered = all(trained_by[side](i) for side, _ in where)
        ref = embed if where[0][0] == "embedding" or head is None else head
        yield UNTRAINED_TOKEN.finding(
            f"{names.get(i, str(i))!r} (id {i}), written by {used[i]}, has an untrained "
            f"{' and '.join(side for side, _ in where)} row: {where[0][1].reason}"
            + ("; the LoRA config trains it" if covered else "; nothing in the LoRA config trains it"),
            f"{ref.file}:{ref.name}",
            severity=Severity.WARNING if covered else None, suggestion=None if covered else suggestion,
            evidence={"token": names.get(i, str(i)), "id": i, "source": used[i],
                      "rows": {side: {"norm": v.norm, "median_norm": v.median, "reason": v.reason} for side, v in where}},
        )
    if len(ids) > MAX_FINDINGS:
        rest = ids[MAX_FINDINGS:]
        yield UNTRAINED_TOKEN.finding(
            f"… and {len(rest)} more tokens with untrained rows", f"{embed.file}:{embed.name}",
            severity=Severity.WARNING if all(coverage.input(i) for i in rest) else None,
            evidence={"tokens": [names.get(i, str(i)) for i in rest[:20]], "count": len(rest)},
        )
