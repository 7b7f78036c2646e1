"""``SftgateCallback``: sftgate's gates inside a transformers ``Trainer`` or TRL ``SFTTrainer`` run.

One import, one argument; nothing is printed unless a gate has something to say::

    from sftgate.runners.integrations.callback import SftgateCallback

    trainer = SFTTrainer(model=..., args=SFTConfig(...), train_dataset=ds,
                         callbacks=[SftgateCallback(cases="cases.jsonl", output_schema="schema.json")])
    trainer.train()   # raises SftgateGateError before the first optimizer step if the labels are wrong

- ``on_train_begin``: draws ``batches`` batches from the trainer's own train dataloader (after
  tokenization, completion / assistant masks, packing and the collator: what the model sees) and
  runs the ``labels`` gate on them (and on the first rows of the prepared ``train_dataset`` when it
  holds a mask column the dataloader drops), plus ``prompt-alignment`` and ``eos`` on the processing
  class and the model's generation config. A failure stops training before the first step
  (``on_error="warn"``: it only reports).
- ``on_evaluate`` (with ``cases`` and ``output_schema``): greedy generation of the fixed cases with
  the model as it trains, then ``strict-json`` and ``eos-behaviour``; ``sftgate/pass_rate`` and
  ``sftgate/eos_stop_rate`` go to the trainer's logs (TensorBoard, W&B...) and the eval metrics
  (``eval_sftgate/pass_rate``: usable as ``metric_for_best_model``). ``stop_at_pass_rate`` stops
  training once reached; ``fail_on_drop`` fails it when the rate falls that far below its best.
- ``on_save``: ``adapter-completeness`` of the checkpoint just written (the empty ZeRO-3 adapter).

Reports go to ``report_dir`` (default ``<output_dir>/sftgate``) as JSON and JUnit XML. Under
``torchrun`` / ``accelerate launch`` the gates run on rank 0 and every rank gets the verdict.
"""

from __future__ import annotations

import inspect
import weakref
from pathlib import Path
from typing import Any

from transformers.trainer_callback import TrainerCallback

from sftgate.gates.frame.report import Report

ON_ERROR = ("stop", "warn")


class SftgateGateError(RuntimeError):
    """Raised from a callback event to stop training: a gate failed. ``report`` holds the findings."""

    def __init__(self, event: str, report: Report | None, rules: list[str], path: Path | None) -> None:
        where = f"; report: {path}" if path is not None else ""
        super().__init__(f"sftgate: {event} gates failed ({', '.join(rules) or 'see the report'}){where}")
        self.event = event
        self.report = report
        self.rules = rules
        self.path = path


class SftgateCallback(TrainerCallback):
    """Gate what the trainer feeds the model, what it generates, and what it saves (see the module doc)."""

    def __init__(
        self,
        *,
        batches: int = 4,
        on_error: str = "stop",
        allow_prompt_training: bool = False,
        cases: str | Path | list[Any] | None = None,
        output_schema: str | Path | Any = None,
        max_new_tokens: int = 64,
        eval_batch_size: int = 8,
        stop_at_pass_rate: float | None = None,
        fail_on_drop: float | None = None,
        check_saves: bool = True,
        report_dir: str | Path | None = None,
        chat_template: str | None = None,
    ) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        if batches < 1:
            raise ValueError(f"batches must be at least 1, got {batches}")
        self.batches = batches
        self.on_error = on_error
        self.allow_prompt_training = allow_prompt_training
        self.cases = cases
        self.output_schema = output_schema
        self.max_new_tokens = max_new_tokens
        self.eval_batch_size = eval_batch_size
        self.stop_at_pass_rate = stop_at_pass_rate
        self.fail_on_drop = fail_on_drop
        self.check_saves = check_saves
        self.report_dir = Path(report_dir) if report_dir is not None else None
        self.chat_template = chat_template
        self.reports: dict[str, Report] = {}  # the last report of each event, on rank 0
        self.best_pass_rate: float | None = None
        self._handler: Any = None

    # ------------------------------------------------------------------ events

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, processing_class: Any = None,
                       train_dataloader: Any = None, **kwargs: Any) -> Any:
        from sftgate.runners.integrations import callback_gates as gates

        self._handler, trainer = _find_caller(self, "callbacks"), _find_caller(self, "callback_handler")
        verdict = None
        if _is_main(args):
            tokenizer = gates.tokenizer_of(processing_class)
            if tokenizer is None or train_dataloader is None:
                raise ValueError("SftgateCallback needs the trainer's processing_class (tokenizer) and train dataloader")
            drawn = gates.draw_batches(train_dataloader, self.batches)
            dataset = getattr(trainer(), "train_dataset", None) if trainer is not None else None
            rows = self.batches * int(getattr(args, "per_device_train_batch_size", 8) or 8)
            report = gates.train_begin_report(
                drawn, tokenizer, model, max_seq_len=_max_length(args), allow_prompt_training=self.allow_prompt_training,
                spec=self._spec(), dataset_rows=gates.masked_rows(dataset, rows))
            verdict = self._conclude("train_begin", report, args)
        self._act("train_begin", gates.broadcast(verdict))
        return control

    def on_evaluate(self, args: Any, state: Any, control: Any, model: Any = None, processing_class: Any = None,
                    metrics: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        if self.cases is None or self.output_schema is None:
            return control
        from sftgate.runners.integrations import callback_gates as gates

        outcome = None
        if _is_main(args):
            cases, schema = self._cases_and_schema()
            report, rates = gates.evaluate_report(model, gates.tokenizer_of(processing_class), cases, schema,
                                                  max_new_tokens=self.max_new_tokens, batch_size=self.eval_batch_size,
                                                  spec=self._spec())
            outcome = {"rates": rates, "verdict": self._judge_rates(report, rates, args, state)}
        outcome = gates.broadcast(outcome)
        rates = outcome["rates"]
        if metrics is not None:
            metrics.update({f"eval_{k}": v for k, v in rates.items()})
        self._log(args, state, control, rates)
        if self.stop_at_pass_rate is not None and rates["sftgate/pass_rate"] >= self.stop_at_pass_rate:
            control.should_training_stop = True
        self._act("evaluate", outcome["verdict"])
        return control

    def on_save(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> Any:
        if not self.check_saves:
            return control
        from sftgate.runners.integrations import callback_gates as gates

        verdict = None
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if _is_main(args) and (folder / "adapter_config.json").is_file():
            verdict = self._conclude(f"save-step{state.global_step}", gates.save_report(folder, model), args)
        self._act("save", gates.broadcast(verdict))
        return control

    # ------------------------------------------------------------------ helpers

    def _spec(self) -> Any:
        from sftgate.gates.tokenizer.prompt_spec import PromptSpec

        return PromptSpec(chat_template=self.chat_template)

    def _cases_and_schema(self) -> tuple[list[Any], Any]:
        from sftgate.gates.adapter.output_schema import OutputSchema
        from sftgate.gates.readers.cases import load_cases

        if isinstance(self.cases, str | Path):
            self.cases = load_cases(self.cases)
        if isinstance(self.output_schema, str | Path):
            self.output_schema = OutputSchema.load(self.output_schema)
        cases: Any = self.cases
        return list(cases or []), self.output_schema

    def _folder(self, args: Any) -> Path | None:
        if self.report_dir is not None:
            return self.report_dir
        return Path(args.output_dir) / "sftgate" if getattr(args, "output_dir", None) else None

    def _conclude(self, name: str, report: Report, args: Any) -> dict[str, Any]:
        """Keep, write and (when it has something to say) print ``report``; return the verdict."""
        from sftgate.runners.integrations.callback_gates import write_and_print

        self.reports[name.split("-step")[0]] = report
        findings = [f for g in report.gates for f in g.findings]
        path = write_and_print(report, self._folder(args), name, say=bool(findings) or not report.passed)
        rules = sorted({f.rule for f in findings if f.is_error} | {g.gate for g in report.gates if g.blocks and not g.findings})
        return {"passed": report.passed, "rules": rules, "path": str(path) if path else None}

    def _judge_rates(self, report: Report, rates: dict[str, float], args: Any, state: Any) -> dict[str, Any]:
        rate = rates["sftgate/pass_rate"]
        dropped = (self.fail_on_drop is not None and self.best_pass_rate is not None
                   and self.best_pass_rate - rate > self.fail_on_drop)
        self.best_pass_rate = rate if self.best_pass_rate is None else max(self.best_pass_rate, rate)
        from sftgate.runners.integrations.callback_gates import write_and_print

        self.reports["evaluate"] = report
        path = write_and_print(report, self._folder(args), f"evaluate-step{state.global_step}", say=dropped)
        return {"passed": not dropped, "rules": ["pass_rate_dropped"] if dropped else [],
                "path": str(path) if path else None}

    def _act(self, event: str, verdict: dict[str, Any] | None) -> None:
        if verdict is None or verdict["passed"] or self.on_error == "warn":
            return
        path = Path(verdict["path"]) if verdict.get("path") else None
        raise SftgateGateError(event, self.reports.get(event), verdict["rules"], path)

    def _log(self, args: Any, state: Any, control: Any, values: dict[str, float]) -> None:
        """Into ``state.log_history`` and through the trainer's callbacks' ``on_log`` (TensorBoard, W&B)."""
        entry = {**values, "step": state.global_step}
        if state.epoch is not None:
            entry["epoch"] = state.epoch
        state.log_history.append(entry)
        handler = self._handler() if self._handler is not None else None
        if handler is not None:
            handler.on_log(args, state, control, logs=dict(values))


def _is_main(args: Any) -> bool:
    return int(getattr(args, "process_index", 0) or 0) == 0


def _max_length(args: Any) -> int | None:
    for name in ("max_length", "max_seq_length"):
        value = getattr(args, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _find_caller(callback: Any, attribute: str) -> Any:
    """A weak reference to the object up the call stack that holds this callback: the
    ``CallbackHandler`` (``attribute="callbacks"``: it reaches TensorBoard / W&B) or the ``Trainer``
    (``"callback_handler"``: its prepared ``train_dataset``). ``None`` when not found."""
    frame = inspect.currentframe()
    for _ in range(10):
        frame = frame.f_back if frame is not None else None
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        holder = getattr(owner, attribute, None)
        callbacks = holder if attribute == "callbacks" else getattr(holder, "callbacks", None)
        if isinstance(callbacks, list) and any(c is callback for c in callbacks):
            return weakref.ref(owner)
    return None
