"""``sftgate check``: every preflight gate a config enables, CPU only, no weights.

Shared by the CLI, the pytest plugin and the pipeline's config/data/tokenizer stages.
"""

from __future__ import annotations

from pathlib import Path

from sftgate.gates.frame import registry
from sftgate.gates.frame.core import GateResult, GateSkipped, InputError, SftgateError, Stage, Status
from sftgate.gates.frame.execute import run_gate, skipped
from sftgate.gates.frame.report import Report
from sftgate.gates.readers import config as config_mod
from sftgate.gates.readers import document


def run_preflight(
    path: str | Path,
    *,
    fail_fast: bool = False,
    stages: tuple[Stage, ...] | None = None,
    command: str = "check",
    format_of: str | None = None,
) -> Report:
    """Run the preflight gates for the config at ``path`` and return the report.

    An sftgate config is validated first (a bad config raises :class:`ConfigError`, exit 2). An
    axolotl, LLaMA-Factory, TRL or mistral-finetune job config (recognised from its keys, or
    ``format_of``) gets its own gate and every gate it gives inputs for
    (:mod:`sftgate.gates.config.peer.run`); an accelerate/DeepSpeed/launcher file passes with a
    note. Any other JSON or YAML file is a foreign config: only its model-ID fields are checked.
    """
    from sftgate.gates.config.peer.fields import recognise

    doc = document.load(path)
    if doc.data is None:
        raise InputError(f"{path}: the file is empty", hint="`sftgate init DIR` writes a complete example config")
    report = Report(command=f"{command} {path}")
    detection = recognise(doc, format_of)
    if detection.format != "sftgate":
        if detection.is_peer or detection.format == "not_a_job":
            from sftgate.gates.config.peer.run import run_peer

            def add(result: GateResult) -> None:
                if stages is None or result.stage in stages:
                    report.add(result)

            run_peer(doc, detection, add, fail_fast=fail_fast)
            return report
        from sftgate.gates.config import model_id

        spec = registry.get("model-id")
        result = run_gate(spec.name, spec.stage, model_id.check, fail_fast=fail_fast, **model_id.from_document(doc))
        result.metrics.update(config_format=detection.format, config_format_why=detection.why)
        report.add(result)
        return report
    config_mod.validate(doc)
    cfg = config_mod.Config(doc)
    skip = set(cfg.get("gates.skip") or ())
    fail_fast = fail_fast or bool(cfg.get("gates.fail_fast"))
    for spec in registry.preflight_gates():
        if stages is not None and spec.stage not in stages:
            continue
        result = _run_one(spec, cfg, skip, fail_fast)
        if result is not None:
            report.add(result)
            if fail_fast and result.blocks:
                break
    return report


def _run_one(spec: registry.GateSpec, cfg: config_mod.Config, skip: set[str], fail_fast: bool) -> GateResult | None:
    if spec.name in skip:
        return skipped(spec.name, spec.stage, "skipped by gates.skip in the config", required=False)
    module = spec.load()
    try:
        kwargs = module.from_config(cfg)
    except GateSkipped as reason:
        return skipped(spec.name, spec.stage, str(reason), required=False)
    except SftgateError as exc:
        return GateResult(spec.name, spec.stage, Status.ERROR, 0.0, reason=str(exc), error_exit_code=exc.exit_code)
    if kwargs is None:
        return None
    return run_gate(spec.name, spec.stage, module.check, fail_fast=fail_fast, required=spec.required, **kwargs)
