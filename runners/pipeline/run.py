"""``sftgate run CONFIG``: every stage of a fine-tune in order, each guarded by its gates, in one report.

A stage starts only when every stage before it passed (the stages are
:mod:`sftgate.runners.pipeline.stages`). Everything lands in the run folder
(``train.output_dir``, default ``sftgate-runs/<config name>`` next to the config): ``adapter/``,
``merged/``, ``release/`` (or ``release.dir``), ``outputs-adapter.jsonl`` /
``outputs-merged.jsonl`` (``sftgate json-check`` re-runs on them), ``provenance.json``,
``loss.png``, ``report.json``, ``report.md`` and ``sftgate-state.json``.

Resume (:mod:`sftgate.runners.pipeline.resume`): a rerun reuses a stage that passed with the same
input key and whose outputs are unchanged, and starts at the first stage whose inputs changed;
``--fresh`` runs everything again. Recorded paths are relative to the run folder, so a copied
project uses its own outputs.

Before anything runs, every folder the run will replace (adapter, merged, release) is checked:
one sftgate did not make, a symlink, or one that holds the config, data, base model or run
folder is refused with exit 2 (:mod:`sftgate.runners.pipeline.folder_swap`). A run that trains
holds the run folder's lock (:mod:`sftgate.runners.pipeline.run_lock`): a second ``sftgate run``
on the same folder stops with exit 2 and says who holds it.

::

    sftgate run sftgate.yaml
    sftgate run sftgate.yaml --until adapter       # stop after the adapter gates
    sftgate run sftgate.yaml --fresh --format json
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import STAGE_ORDER, Stage
from sftgate.gates.frame.report import Report
from sftgate.gates.readers import config as config_mod
from sftgate.runners.pipeline.folder_swap import ensure_replaceable
from sftgate.runners.pipeline.layout import output_targets, run_dir_for
from sftgate.runners.pipeline.resume import (
    STATE_VERSION,
    from_state_path,
    hash_path,
    load_state,
    outputs_intact,
    produces,
    result_from_dict,
    save_state,
    stage_key,
    to_state_path,
)
from sftgate.runners.pipeline.run_folder import read_json, write_reports
from sftgate.runners.pipeline.run_lock import run_lock
from sftgate.runners.pipeline.stages import Context, Say, run_stage


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
    from sftgate.runners.work.ranks import is_main_process

    say = say or (lambda _msg: None)
    config = config_mod.load(Path(config_path))
    until_stage = Stage(until) if until is not None else None
    only_stage = Stage(only) if only is not None else None
    run_dir = run_dir_for(config)
    for target, setting, protected in output_targets(config, run_dir):
        ensure_replaceable(target, protected=protected, setting=setting)
    report = Report(command=command or f"run {config_path}")
    if is_main_process() and _goes_past_preflight(until_stage, only_stage):
        with run_lock(run_dir, command=report.command):
            return _run(config, run_dir, report, until_stage, only_stage, resume, say, progress, job_id)
    return _run(config, run_dir, report, until_stage, only_stage, resume, say, progress, job_id)


def _goes_past_preflight(until: Stage | None, only: Stage | None) -> bool:
    last = only or until or Stage.RELEASE
    return STAGE_ORDER.index(last) > STAGE_ORDER.index(Stage.TOKENIZER)


def _run(config: config_mod.Config, run_dir: Path, report: Report, until_stage: Stage | None,
         only_stage: Stage | None, resume: bool, say: Say, progress: bool, job_id: str | None) -> Report:
    from sftgate.runners.pipeline import ledger
    from sftgate.runners.work.ranks import is_main_process

    job = job_id or ledger.new_job_id()
    ctx = Context(config=config, run_dir=run_dir, report=report, job_id=job, say=say, progress=progress)
    state = load_state(run_dir)  # read even with resume=False: earlier stages' outputs and keys chain on
    saved: dict[str, Any] = state.get("stages", {}) if state else {}
    new_state: dict[str, Any] = {"version": STATE_VERSION, "config": config.path.name, "job_id": job, "stages": {}}
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
            ctx.outputs.update(_outputs_here((saved.get(stage.value) or {}).get("outputs"), run_dir))
            continue
        key = stage_key(stage, config, previous, ctx.outputs)
        record = saved.get(stage.value) if resume else None
        if record and record.get("key") == key and record.get("passed") and outputs_intact(record, run_dir):
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
        if not main and stage is Stage.TRAIN:  # torchrun / accelerate launch: the other ranks only train
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
    for name, path in _outputs_here(record.get("outputs"), ctx.run_dir).items():
        ctx.outputs[name] = path
        ctx.report.artifacts[name] = path
    if isinstance(record.get("manifest"), str):
        ctx.manifest = read_json(from_state_path(record["manifest"], ctx.run_dir))
    ctx.say(f"[{stage.value}] resumed: inputs unchanged since {record.get('finished_utc', '?')}")


def _execute(ctx: Context, stage: Stage, key: str) -> dict[str, Any]:
    """Run one stage; return its state record (key, passed, gate results, outputs and their hashes)."""
    from sftgate.runners.pipeline import ledger

    start_index = len(ctx.report.gates)
    before = dict(ctx.outputs)
    ctx.say(f"[{stage.value}] running")
    run_stage(ctx, stage)
    results = ctx.report.gates[start_index:]
    outputs = {k: v for k, v in ctx.outputs.items() if before.get(k) != v}
    project = ctx.config.base_dir
    return {
        "key": key,
        "passed": not any(g.blocks for g in results),
        "finished_utc": ledger.utc_now(),
        "gates": [g.to_dict() for g in results],
        "outputs": {k: to_state_path(v, ctx.run_dir, project) for k, v in outputs.items()},
        "output_hashes": {k: hash_path(Path(outputs[k])) for k in produces(stage) if k in outputs},
        "manifest": to_state_path(ctx.run_dir / "provenance.json", ctx.run_dir, project)
        if stage is Stage.TRAIN and ctx.manifest else None,
    }


def _outputs_here(recorded: Any, run_dir: Path) -> dict[str, str]:
    """Recorded outputs as paths of this run folder (relative ones resolve against it)."""
    if not isinstance(recorded, dict):
        return {}
    return {k: str(from_state_path(v, run_dir)) for k, v in recorded.items() if isinstance(v, str)}
