"""``sftgate run CONFIG``: every stage of a fine-tune, each guarded by its gates, in one report.

Stages, in order (a stage starts only when every stage before it passed):

====================  ====================================================================
``config``            model-id (preflight)
``data``              dataset-schema, split-isolation (preflight)
``tokenizer``         prompt-alignment, eos (preflight)
``train``             lora-targets (meta device, before any weights), ``sft`` (LoRA training with
                      a PEFT smoke test first), provenance (manifest + job ledger)
``adapter``           strict-json and eos-behaviour on the fixed cases, base + adapter
``merge``             ``merge`` (merge_and_unload), merge-equivalence, artifacts, strict-json and
                      eos-behaviour on the merged model
``release``           promotion: the release folder written atomically with its manifest, only
                      when no gate blocks (a required skip blocks: ``gate_skipped``)
====================  ====================================================================

Everything lands in the run folder (``train.output_dir``, default
``sftgate-runs/<config name>`` next to the config): ``adapter/``, ``merged/``, ``release/``
(or ``release.dir``), ``outputs-adapter.jsonl`` / ``outputs-merged.jsonl`` (``sftgate json-check``
re-runs on them), ``provenance.json``, ``loss.png``, ``report.json``, ``report.md`` and
``sftgate-state.json``.

Resume: each stage's inputs are hashed (the config sections it reads, the files and folders it
reads, and the previous stage's key). A rerun reuses a stage that passed with the same key and
whose outputs are unchanged, and starts at the first stage whose inputs changed; ``--fresh``
runs everything again.

::

    sftgate run sftgate.yaml
    sftgate run sftgate.yaml --until adapter       # stop after the adapter gates
    sftgate run sftgate.yaml --fresh --format json
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import (
    STAGE_ORDER,
    Finding,
    GateResult,
    GateSkipped,
    InputError,
    Severity,
    SftgateError,
    Stage,
    Status,
)
from sftgate.gates.frame.execute import run_gate, skipped
from sftgate.gates.frame.report import Report, to_json, to_markdown
from sftgate.gates.readers import atomic
from sftgate.gates.readers import config as config_mod
from sftgate.runners.pipeline.layout import release_dir_for, run_dir_for

Say = Callable[[str], Any]
STATE_NAME = "sftgate-state.json"
STATE_VERSION = 1
PREFLIGHT = (Stage.CONFIG, Stage.DATA, Stage.TOKENIZER)
SFT_GATE = "sft"
MERGE_GATE = "merge"

# The config sections (dotted keys) and files each stage reads: its inputs for resume.
STAGE_KEYS: dict[Stage, tuple[str, ...]] = {
    Stage.CONFIG: ("sftgate", "model", "release.repo_id", "release.require_pinned_revision", "gates"),
    Stage.DATA: ("data", "train.max_seq_len", "model.tokenizer", "gates"),
    Stage.TOKENIZER: ("model", "prompt", "data.train", "data.cases", "train.max_seq_len", "train.collator", "gates"),
    Stage.TRAIN: ("model", "prompt", "lora", "train", "data.train", "data.format", "gates"),
    Stage.ADAPTER: ("eval", "prompt", "data.cases", "data.output_schema", "data.exact_keys", "gates"),
    Stage.MERGE: ("model.dtype", "eval", "prompt", "data.cases", "data.output_schema", "data.exact_keys", "gates"),
    Stage.RELEASE: ("release", "gates"),
}
STAGE_FILES: dict[Stage, tuple[str, ...]] = {
    Stage.CONFIG: ("model.id",),
    Stage.DATA: ("data.train", "data.eval", "data.cases", "data.output_schema", "model.tokenizer"),
    Stage.TOKENIZER: ("model.id", "model.tokenizer", "prompt.chat_template", "prompt.inference_chat_template",
                      "data.train", "data.cases"),
    Stage.TRAIN: ("model.id", "model.tokenizer", "prompt.chat_template", "data.train"),
    Stage.ADAPTER: ("data.cases", "data.output_schema"),
    Stage.MERGE: ("data.cases", "data.output_schema"),
    Stage.RELEASE: (),
}


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


# --------------------------------------------------------------------------- input hashing


def _hash_path(path: Path) -> str:
    from sftgate.gates.train.provenance import file_info, model_fingerprint

    if not path.exists():
        return "missing"
    if path.is_dir():
        if (path / "config.json").is_file() or any(path.glob("*.safetensors")):
            return model_fingerprint(path)["sha256"]
        return file_info(path, records=False)["sha256"]
    st = path.stat()
    return f"{file_info(path, records=False)['sha256']}:{st.st_size}"


def stage_key(stage: Stage, config: config_mod.Config, previous: str, outputs: dict[str, str]) -> str:
    """The hash of everything ``stage`` reads: config sections, files, and the previous stage's key."""
    digest = hashlib.sha256()
    digest.update(f"{STATE_VERSION}:{stage.value}:{previous}".encode())
    sections = {key: config.get(key) for key in STAGE_KEYS[stage]}
    digest.update(json.dumps(sections, sort_keys=True, default=str).encode())
    for key in STAGE_FILES[stage]:
        path = config.path_of(key)
        if path is not None:
            digest.update(f"{key}={_hash_path(path)}".encode())
    for name in _consumes(stage):
        if name in outputs:
            digest.update(f"{name}={_hash_path(Path(outputs[name]))}".encode())
    return digest.hexdigest()


def _consumes(stage: Stage) -> tuple[str, ...]:
    return {Stage.ADAPTER: ("adapter",), Stage.MERGE: ("adapter",), Stage.RELEASE: ("merged",)}.get(stage, ())


def _produces(stage: Stage) -> tuple[str, ...]:
    return {Stage.TRAIN: ("adapter",), Stage.MERGE: ("merged",), Stage.RELEASE: ("release",)}.get(stage, ())


# --------------------------------------------------------------------------- state


def load_state(run_dir: Path) -> dict[str, Any]:
    try:
        value = json.loads((run_dir / STATE_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) and value.get("version") == STATE_VERSION else {}


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    atomic.write_text(run_dir / STATE_NAME, json.dumps(state, indent=2, default=str) + "\n")


def result_from_dict(data: dict[str, Any]) -> GateResult:
    """A :class:`GateResult` back from its report dict (for resumed stages)."""
    findings = [
        Finding(code=f["code"], rule=f["rule"], severity=Severity(f["severity"]), message=f["message"],
                location=f["location"], suggestion=f.get("suggestion"), evidence=f.get("evidence") or {},
                line=f.get("line"))
        for f in data.get("findings", [])
    ]
    return GateResult(gate=data["gate"], stage=Stage(data["stage"]), status=Status(data["status"]),
                      seconds=float(data.get("seconds", 0.0)), findings=findings,
                      required=bool(data.get("required", True)), reason=data.get("reason"),
                      metrics=data.get("metrics") or {})


# --------------------------------------------------------------------------- the stages


def _preflight(ctx: Context, stage: Stage) -> None:
    from sftgate.gates.frame.preflight import run_preflight

    sub = run_preflight(ctx.config.path, stages=(stage,), command="run")
    for result in sub.gates:
        ctx.report.add(result)


def _train(ctx: Context) -> None:
    from sftgate.gates.tokenizer.rendering import chat_template_text, spec_from_config, template_hash
    from sftgate.gates.train import lora_targets, provenance
    from sftgate.runners.pipeline import ledger
    from sftgate.runners.work.sft import TrainSettings, is_main_process

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
    manifest = provenance.build_manifest(
        cfg, job_id=ctx.job_id, lora=settings.lora_dict(),
        train={"max_seq_len": settings.max_seq_len, "seed": settings.seed, "lr": settings.lr,
               "batch_size": settings.batch_size, "grad_accum": settings.grad_accum, "epochs": settings.epochs,
               "max_steps": settings.max_steps, "collator": settings.collator,
               "steps": result.metrics.get("steps"), "final_loss": result.metrics.get("final_loss")},
        template_sha256=template_hash(template), template_source=source,
    )
    text = json.dumps(manifest, indent=2, default=str) + "\n"
    atomic.write_text(ctx.run_dir / provenance.MANIFEST_NAME, text)
    atomic.write_text(adapter_dir / provenance.ADAPTER_MANIFEST, text)
    ctx.manifest = manifest
    ledger_path = ledger.default_ledger(cfg.base_dir)
    ledger.append(ledger_path, {"job_id": ctx.job_id, "event": "trained", "config": str(cfg.path),
                                "adapter": str(adapter_dir), "base_model": manifest["base_model"].get("id"),
                                "train_sha256": manifest["datasets"].get("train", {}).get("sha256")})
    ctx.gate(provenance.GATE, Stage.TRAIN, provenance.check, manifest=ctx.run_dir / provenance.MANIFEST_NAME,
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

    cfg = ctx.config
    cases_path = cfg.require_file("data.cases")
    schema_path = cfg.require_file("data.output_schema")
    cases = load_cases(cases_path) if cases_path is not None else None
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
    from sftgate.runners.pipeline.release import promote

    cfg = ctx.config
    merged = Path(ctx.outputs.get("merged") or ctx.run_dir / "merged")
    target = release_dir_for(cfg, ctx.run_dir)
    manifest = ctx.manifest or _read_json(ctx.run_dir / "provenance.json")
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
                         require_pinned_revision=bool(cfg.get("release.require_pinned_revision", True)))
    except SftgateError as exc:
        ctx.report.add(_error("release", Stage.RELEASE, exc))
        return
    ctx.report.add(result)
    if result.passed:
        ctx.outputs["release"] = str(target)
        ctx.report.artifacts["release"] = str(target)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


STAGE_FUNCS: dict[Stage, Callable[[Context], None]] = {
    Stage.TRAIN: _train,
    Stage.ADAPTER: _adapter,
    Stage.MERGE: _merge,
    Stage.RELEASE: _release,
}


# --------------------------------------------------------------------------- the pipeline


def run_pipeline(
    config_path: str | os.PathLike[str],
    *,
    until: Stage | str | None = None,
    only: Stage | str | None = None,
    resume: bool = True,
    say: Say | None = None,
    progress: bool = False,
    job_id: str | None = None,
    command: str | None = None,
) -> Report:
    """Run the stages of the config at ``config_path`` up to ``until`` (or just ``only``); return the report.

    The report is also written to ``<run folder>/report.json`` and ``report.md``. A bad config
    raises :class:`~sftgate.gates.frame.core.ConfigError` (exit 2) before anything runs.
    """
    from sftgate.runners.pipeline import ledger
    from sftgate.runners.work.sft import is_main_process

    say = say or (lambda _msg: None)
    config = config_mod.load(Path(config_path))
    until_stage = Stage(until) if until is not None else None
    only_stage = Stage(only) if only is not None else None
    run_dir = run_dir_for(config)
    report = Report(command=command or f"run {config_path}")
    job = job_id or ledger.new_job_id()
    ctx = Context(config=config, run_dir=run_dir, report=report, job_id=job, say=say, progress=progress)
    state = load_state(run_dir)  # read even with resume=False: earlier stages' outputs and keys chain on
    saved: dict[str, Any] = state.get("stages", {}) if state else {}
    new_state: dict[str, Any] = {"version": STATE_VERSION, "config": str(config.path), "job_id": job, "stages": {}}
    ledger_path = ledger.default_ledger(config.base_dir)
    main = is_main_process()
    if main:
        ledger.append(ledger_path, {"job_id": job, "event": "start", "config": str(config.path),
                                    "until": until_stage.value if until_stage else None,
                                    "only": only_stage.value if only_stage else None})
    report.artifacts["run_dir"] = str(run_dir)
    previous = ""
    stopped_at: Stage | None = None
    for stage in Stage:
        if only_stage is not None and stage is not only_stage:
            if STAGE_ORDER.index(stage) > STAGE_ORDER.index(only_stage):
                break
            # an earlier stage: not run, but its key chains into the one that runs, as in a full run
            previous = stage_key(stage, config, previous, ctx.outputs)
            ctx.outputs.update((saved.get(stage.value) or {}).get("outputs") or {})
            continue
        key = stage_key(stage, config, previous, ctx.outputs)
        record = saved.get(stage.value) if resume else None
        if record and record.get("key") == key and record.get("passed") and _outputs_intact(record):
            _reuse(ctx, stage, record)  # same inputs (keys chain on every earlier stage's inputs), passed
        else:
            record = _execute(ctx, stage, key)
        new_state["stages"][stage.value] = record
        if main and run_dir.exists():
            save_state(run_dir, {**new_state, "stages": {**saved, **new_state["stages"]}})
        previous = key
        if not record["passed"]:
            stopped_at = stage
            say(f"[{stage.value}] a gate blocks: stopping here (later stages did not run)")
            break
        if until_stage is not None and stage is until_stage:
            break
    if main and run_dir.exists():
        write_reports(report, run_dir)
    if main:
        ledger.append(ledger_path, {"job_id": job, "event": "end", "passed": report.passed,
                                    "exit_code": report.exit_code, "stopped_at": stopped_at.value if stopped_at else None,
                                    "release": ctx.outputs.get("release")})
    return report


def _reuse(ctx: Context, stage: Stage, record: dict[str, Any]) -> None:
    """Add a stage's recorded results to the report without running it again."""
    for g in record.get("gates", []):
        result = result_from_dict(g)
        result.reason = (result.reason + "; " if result.reason else "") + "resumed: inputs unchanged"
        ctx.report.add(result)
    for name, path in (record.get("outputs") or {}).items():
        ctx.outputs[name] = path
        ctx.report.artifacts[name] = path
    if record.get("manifest"):
        ctx.manifest = _read_json(Path(record["manifest"]))
    ctx.say(f"[{stage.value}] resumed: inputs unchanged since {record.get('finished_utc', '?')}")


def _execute(ctx: Context, stage: Stage, key: str) -> dict[str, Any]:
    """Run one stage; return its state record (key, passed, gate results, outputs and their hashes)."""
    from sftgate.runners.pipeline import ledger

    start_index = len(ctx.report.gates)
    before = dict(ctx.outputs)
    ctx.say(f"[{stage.value}] running")
    if stage in PREFLIGHT:
        _preflight(ctx, stage)
    else:
        ctx.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            STAGE_FUNCS[stage](ctx)
        except SftgateError as exc:
            ctx.report.add(_error(stage.value, stage, exc))
    results = ctx.report.gates[start_index:]
    outputs = {k: v for k, v in ctx.outputs.items() if before.get(k) != v}
    return {
        "key": key,
        "passed": not any(g.blocks for g in results),
        "finished_utc": ledger.utc_now(),
        "gates": [g.to_dict() for g in results],
        "outputs": outputs,
        "output_hashes": {k: _hash_path(Path(outputs[k])) for k in _produces(stage) if k in outputs},
        "manifest": str(ctx.run_dir / "provenance.json") if stage is Stage.TRAIN and ctx.manifest else None,
    }


def _outputs_intact(record: dict[str, Any]) -> bool:
    """A reused stage's outputs must still be there, unchanged."""
    for name, digest in (record.get("output_hashes") or {}).items():
        path = (record.get("outputs") or {}).get(name)
        if path is None or _hash_path(Path(path)) != digest:
            return False
    return True


def write_reports(report: Report, run_dir: Path) -> tuple[Path, Path]:
    """``report.json`` and ``report.md`` in the run folder (atomic writes)."""
    report.artifacts["report_json"] = str(run_dir / "report.json")
    report.artifacts["report_md"] = str(run_dir / "report.md")
    atomic.write_text(run_dir / "report.json", to_json(report))
    atomic.write_text(run_dir / "report.md", to_markdown(report))
    return run_dir / "report.json", run_dir / "report.md"


def write_loss_curve(train_dir: str | os.PathLike[str], out: str | os.PathLike[str], *, title: str = "training loss",
                     extra: dict[str, list[dict[str, float]]] | None = None) -> Path | None:
    """Plot the loss curve a training run saved (``sftgate-train.json``) as a PNG; None without matplotlib."""
    from sftgate.runners.work.sft import read_losses

    curves = {"LoRA": read_losses(train_dir)}
    curves.update(extra or {})
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for label, points in curves.items():
        ax.plot([p["step"] for p in points], [p["loss"] for p in points], marker=".", label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    target = Path(out)
    atomic.write_bytes(target, png.getvalue())
    return target
