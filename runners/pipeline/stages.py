"""The stages of ``sftgate run``: what each one runs, guarded by its gates.

Stages, in order (:mod:`sftgate.runners.pipeline.run` runs them; a stage starts only when every
stage before it passed):

====================  ====================================================================
``config``            model-id (preflight)
``data``              dataset-schema, split-isolation (preflight)
``tokenizer``         prompt-alignment, eos, embeddings, model-config (preflight)
``train``             lora-targets (meta device, before any weights), ``sft`` (LoRA training with
                      a PEFT smoke test first), provenance (manifest + job ledger)
``adapter``           strict-json and eos-behaviour on the fixed cases, base + adapter
``merge``             ``merge`` (merge_and_unload), merge-equivalence, artifacts, merge-dtype,
                      strict-json and eos-behaviour on the merged model
``release``           promotion: the release folder written atomically with its manifest, only
                      when no gate blocks (a required skip blocks: ``gate_skipped``)
====================  ====================================================================

A stage adds its results to the :class:`Context`'s report and records what it produced
(``adapter``, ``merged``, ``release``, ...) in ``Context.outputs``.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import GateResult, GateSkipped, InputError, SftgateError, Stage, Status
from sftgate.gates.frame.execute import run_gate, skipped
from sftgate.gates.frame.report import Report
from sftgate.gates.readers import atomic
from sftgate.gates.readers import config as config_mod
from sftgate.runners.pipeline.layout import protected_paths, release_dir_for
from sftgate.runners.pipeline.run_folder import read_json, write_loss_curve

Say = Callable[[str], Any]
PREFLIGHT = (Stage.CONFIG, Stage.DATA, Stage.TOKENIZER)
SFT_GATE = "sft"
MERGE_GATE = "merge"


@dataclass
class Context:
    """One pipeline run: the config, the run folder, what earlier stages produced."""

    config: config_mod.Config
    run_dir: Path
    report: Report
    job_id: str
    say: Say
    progress: bool = False
    outputs: dict[str, str] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None

    @property
    def skip(self) -> set[str]:
        return set(self.config.get("gates.skip") or ())

    @property
    def fail_fast(self) -> bool:
        return bool(self.config.get("gates.fail_fast"))

    def gate(self, name: str, stage: Stage, check: Callable[..., Any], *, required: bool = True, **kwargs: Any) -> GateResult:
        if name in self.skip:
            return self.report.add(skipped(name, stage, "skipped by gates.skip in the config", required=False))
        return self.report.add(run_gate(name, stage, check, fail_fast=self.fail_fast, required=required, **kwargs))


# --------------------------------------------------------------------------- paths


def base_model(config: config_mod.Config) -> tuple[str, str | None]:
    """The base model to load: a local folder (relative to the config), a cached snapshot, or a Hub ID."""
    from sftgate.gates.readers.tokenizer_io import model_dir_from_config

    local = config.path_of("model.id")
    if local is not None and local.is_dir():
        return str(local), None
    folder = model_dir_from_config(config)  # the Hugging Face cache snapshot, when there is one
    if folder is not None:
        return str(folder), None
    return str(config.get("model.id")), config.get("model.revision")


def base_id_for_adapter(config: config_mod.Config) -> str:
    """What the adapter records as ``base_model_name_or_path``: a resolved local path, else the Hub ID."""
    local = config.path_of("model.id")
    if local is not None and local.is_dir():
        return str(local.resolve())
    return str(config.get("model.id"))


# --------------------------------------------------------------------------- the stages


def _preflight(ctx: Context, stage: Stage) -> None:
    from sftgate.gates.frame.preflight import run_preflight

    sub = run_preflight(ctx.config.path, stages=(stage,), command="run")
    for result in sub.gates:
        ctx.report.add(result)


def _train(ctx: Context) -> None:
    from sftgate.gates.tokenizer.rendering import chat_template_text, spec_from_config, template_hash
    from sftgate.gates.train import lora_targets, provenance, provenance_manifest
    from sftgate.runners.pipeline import ledger
    from sftgate.runners.work.ranks import is_main_process
    from sftgate.runners.work.sft_settings import TrainSettings

    cfg = ctx.config
    # lora-targets: before any weights are loaded.
    try:
        kwargs = lora_targets.from_config(cfg)
    except GateSkipped as why:
        ctx.report.add(skipped(lora_targets.GATE, Stage.TRAIN, str(why), required=False))
        kwargs = None
    except SftgateError as exc:
        ctx.report.add(_error(lora_targets.GATE, Stage.TRAIN, exc))
        return
    if kwargs is not None and ctx.gate(lora_targets.GATE, Stage.TRAIN, lora_targets.check, **kwargs).blocks:
        return

    train_path = cfg.require_file("data.train")
    if train_path is None:
        raise InputError(f"{cfg.location('data.train')}: no training data in the config",
                         hint="set data.train to a JSONL file (relative to the config)")
    settings = TrainSettings.from_config(cfg)
    spec = spec_from_config(cfg)
    adapter_dir = ctx.run_dir / "adapter"
    base, revision = base_model(cfg)
    tokenizer_dir = cfg.path_of("model.tokenizer")
    ctx.say(f"[train] LoRA r={settings.lora_r} on {base} ({cfg.get('model.id')}); data {train_path}")
    result = _run_step(SFT_GATE, Stage.TRAIN, lambda: _sft(ctx, base, revision, train_path, adapter_dir, settings,
                                                             spec, tokenizer_dir))
    ctx.report.add(result)
    if result.blocks or not is_main_process():  # other ranks of a distributed run stop after training
        return
    ctx.outputs["adapter"] = str(adapter_dir)
    ctx.report.artifacts["adapter"] = str(adapter_dir)
    loss_png = write_loss_curve(adapter_dir, ctx.run_dir / "loss.png", title=f"LoRA training ({cfg.path.name})")
    if loss_png is not None:
        ctx.outputs["loss_curve"] = str(loss_png)
        ctx.report.artifacts["loss_curve"] = str(loss_png)

    # provenance: the manifest, next to the adapter and in the run folder; the ledger.
    from sftgate.gates.readers.tokenizer_io import load_tokenizer_cached

    tokenizer = load_tokenizer_cached(adapter_dir)
    template = chat_template_text(tokenizer, spec)
    source = "prompt.chat_template" if spec.chat_template else ("tokenizer" if template else "none")
    manifest = provenance_manifest.build_manifest(
        cfg, job_id=ctx.job_id, lora=settings.lora_dict(),
        train={"max_seq_len": settings.max_seq_len, "seed": settings.seed, "lr": settings.lr,
               "batch_size": settings.batch_size, "grad_accum": settings.grad_accum, "epochs": settings.epochs,
               "max_steps": settings.max_steps, "collator": settings.collator,
               "steps": result.metrics.get("steps"), "final_loss": result.metrics.get("final_loss")},
        template_sha256=template_hash(template), template_source=source,
    )
    text = json.dumps(manifest, indent=2, default=str) + "\n"
    atomic.write_text(ctx.run_dir / provenance_manifest.MANIFEST_NAME, text)
    atomic.write_text(adapter_dir / provenance_manifest.ADAPTER_MANIFEST, text)
    ctx.manifest = manifest
    ledger_path = ledger.default_ledger(cfg.base_dir)
    ledger.append(ledger_path, {"job_id": ctx.job_id, "event": "trained", "config": str(cfg.path),
                                "adapter": str(adapter_dir), "base_model": manifest["base_model"].get("id"),
                                "train_sha256": manifest["datasets"].get("train", {}).get("sha256")})
    ctx.gate(provenance.GATE, Stage.TRAIN, provenance.check, manifest=ctx.run_dir / provenance_manifest.MANIFEST_NAME,
             model_id=base_id_for_adapter(cfg), adapter_dir=adapter_dir, config_dir=cfg.base_dir,
             data_files={k: p for k in ("train", "eval", "cases", "output_schema")
                         if (p := cfg.path_of(f"data.{k}")) is not None},
             ledger=ledger_path)


def _sft(ctx: Context, base: str, revision: str | None, train_path: Path, adapter_dir: Path, settings: Any,
         spec: Any, tokenizer_dir: Path | None) -> dict[str, Any]:
    from sftgate.runners.work.sft import train

    result = train(base, train_path, adapter_dir, settings=settings, spec=spec, tokenizer_dir=tokenizer_dir,
                   base_id=base_id_for_adapter(ctx.config), revision=revision,
                   cache_dir=ctx.run_dir / ".sftgate-cache", say=ctx.say, progress=ctx.progress)
    return result.metrics()


def _run_step(name: str, stage: Stage, fn: Callable[[], dict[str, Any]]) -> GateResult:
    """Run a step that is not a gate (training, merging) as a result: pass, or error with the reason."""
    start = time.perf_counter()
    try:
        metrics = fn()
    except SftgateError as exc:
        return GateResult(name, stage, Status.ERROR, time.perf_counter() - start, reason=str(exc),
                          error_exit_code=exc.exit_code)
    except Exception as exc:  # a crash in training is not a verdict on the data: status error, exit 3
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return GateResult(name, stage, Status.ERROR, time.perf_counter() - start, reason=last[:500])
    return GateResult(name, stage, Status.PASS, time.perf_counter() - start, metrics=metrics)


def _error(name: str, stage: Stage, exc: SftgateError) -> GateResult:
    return GateResult(name, stage, Status.ERROR, 0.0, reason=str(exc), error_exit_code=exc.exit_code)


def _cases_and_schema(ctx: Context) -> tuple[Any, Any]:
    from sftgate.gates.adapter.output_schema import OutputSchema
    from sftgate.gates.readers.cases import load_cases
    from sftgate.gates.readers.roles import roles_from_config

    cfg = ctx.config
    cases_path = cfg.require_file("data.cases")
    schema_path = cfg.require_file("data.output_schema")
    cases = load_cases(cases_path, roles=roles_from_config(cfg)) if cases_path is not None else None
    schema = OutputSchema.load(schema_path, exact_keys=bool(cfg.get("data.exact_keys"))) if schema_path else None
    return cases, schema


def _behaviour(ctx: Context, stage: Stage, model_dir: str, adapter: Path | None, label: str) -> None:
    """Generate on the fixed cases and run strict-json and eos-behaviour on the generations."""
    from sftgate.gates.adapter import eos_behaviour, strict_json
    from sftgate.gates.tokenizer.rendering import inference_spec_from_config
    from sftgate.runners.work.generate import generate_cases, load_for_generation, with_lines, write_outputs

    cfg = ctx.config
    try:
        cases, schema = _cases_and_schema(ctx)
    except SftgateError as exc:
        ctx.report.add(_error(strict_json.GATE, stage, exc))
        return
    if cases is None:
        why = "no fixed cases (data.cases) to generate on"
        ctx.report.add(skipped(strict_json.GATE, stage, why))
        ctx.report.add(skipped(eos_behaviour.GATE, stage, why))
        return
    spec = inference_spec_from_config(cfg)
    max_new = int(cfg.get("eval.max_new_tokens") or 128)
    ctx.say(f"[{stage.value}] generating on {len(cases)} fixed cases ({label}, max_new_tokens {max_new})")
    stats: dict[str, Any] = {}

    def generate() -> dict[str, Any]:
        model, tokenizer = load_for_generation(model_dir, adapter=adapter, tokenizer_dir=_tokenizer_for(cfg, adapter))
        records = generate_cases(model, tokenizer, cases, spec, max_new_tokens=max_new,
                                 batch_size=int(cfg.get("eval.batch_size") or 8), stats=stats)
        out = write_outputs(ctx.run_dir / f"outputs-{label}.jsonl", records)
        holder["records"] = with_lines(records)
        holder["path"] = out
        return stats

    holder: dict[str, Any] = {}
    gen = _run_step("generate", stage, generate)
    if gen.blocks:
        ctx.report.add(gen)
        return
    source = str(holder["path"])
    ctx.outputs[f"outputs_{label}"] = source
    ctx.report.artifacts[f"outputs_{label}"] = source
    strict = ctx.gate(strict_json.GATE, stage, strict_json.check_records, records=holder["records"], schema=schema,
                      source=source, min_pass_rate=float(cfg.get("eval.min_pass_rate", 1.0)))
    strict.metrics.update({k if k.startswith("generation") else f"generation_{k}": v for k, v in stats.items()
                           if k in ("generation_seconds", "tokens_per_second")})
    ctx.gate(eos_behaviour.GATE, stage, eos_behaviour.check, records=holder["records"], max_new_tokens=max_new,
             min_eos_rate=float(cfg.get("eval.min_eos_rate", 1.0)), source=source)


def _tokenizer_for(cfg: config_mod.Config, adapter: Path | None) -> Path | None:
    """The tokenizer that ships: the merged folder's or the adapter's; else ``model.tokenizer``."""
    from sftgate.gates.readers.tokenizer_io import tokenizer_files

    if adapter is None or tokenizer_files(adapter):
        return None
    return cfg.path_of("model.tokenizer")


def _adapter(ctx: Context) -> None:
    base, _ = base_model(ctx.config)
    adapter = Path(ctx.outputs.get("adapter") or ctx.run_dir / "adapter")
    if not (adapter / "adapter_config.json").is_file():
        raise InputError(f"{adapter}: no adapter to evaluate", hint="run the train stage first")
    _behaviour(ctx, Stage.ADAPTER, base, adapter, "adapter")


def _merge(ctx: Context) -> None:
    from sftgate.runners.work.merge import merge_stage

    adapter = Path(ctx.outputs.get("adapter") or ctx.run_dir / "adapter")
    merged = ctx.run_dir / "merged"
    holder: dict[str, Any] = {}

    def merge() -> dict[str, Any]:
        holder["dir"] = merge_stage(ctx.config, ctx.report, adapter=adapter, out=merged, say=ctx.say,
                                    progress=ctx.progress)
        return {"merged": str(holder["dir"])}

    step = _run_step(MERGE_GATE, Stage.MERGE, merge)
    if step.blocks:
        ctx.report.add(step)
        return
    ctx.outputs["merged"] = str(merged)
    if any(g.blocks for g in ctx.report.gates if g.stage is Stage.MERGE):
        return
    _behaviour(ctx, Stage.MERGE, str(merged), None, "merged")


def _release(ctx: Context) -> None:
    from sftgate.runners.pipeline.model_card import card_settings
    from sftgate.runners.pipeline.release import promote

    cfg = ctx.config
    merged = Path(ctx.outputs.get("merged") or ctx.run_dir / "merged")
    target = release_dir_for(cfg, ctx.run_dir)
    manifest = ctx.manifest or read_json(ctx.run_dir / "provenance.json")
    base = (manifest or {}).get("base_model") or {"id": cfg.get("model.id"), "revision": cfg.get("model.revision")}
    resolved = base.get("resolved_revision")
    if base.get("local_path"):  # a local folder: its content fingerprint is the revision
        base_entry = {"id": base["local_path"], "revision": resolved}
    else:  # a Hub ID: the commit it resolved to (a branch name is what the release gate refuses)
        pinned = resolved if isinstance(resolved, str) and len(resolved) == 40 else base.get("revision")
        base_entry = {"id": base.get("hub_id") or base.get("id"), "revision": pinned}
    ctx.say(f"[release] promoting {merged} -> {target}")
    try:
        result = promote(merged, target, report=ctx.report,
                         extra_manifest={"base_model": base_entry, "provenance": manifest, "job_id": ctx.job_id},
                         profile=str(cfg.get("release.profile") or "transformers"),
                         require_pinned_revision=bool(cfg.get("release.require_pinned_revision", True)),
                         card=card_settings(cfg),
                         protected=[*protected_paths(cfg), (ctx.run_dir, "the run folder")])
    except SftgateError as exc:
        ctx.report.add(_error("release", Stage.RELEASE, exc))
        return
    ctx.report.add(result)
    if result.passed:
        ctx.outputs["release"] = str(target)
        ctx.report.artifacts["release"] = str(target)


STAGE_FUNCS: dict[Stage, Callable[[Context], None]] = {
    Stage.TRAIN: _train,
    Stage.ADAPTER: _adapter,
    Stage.MERGE: _merge,
    Stage.RELEASE: _release,
}


def run_stage(ctx: Context, stage: Stage) -> None:
    """Run one stage: its gates and steps add their results to ``ctx.report``."""
    if stage in PREFLIGHT:
        _preflight(ctx, stage)
    else:
        ctx.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            STAGE_FUNCS[stage](ctx)
        except SftgateError as exc:
            ctx.report.add(_error(stage.value, stage, exc))
