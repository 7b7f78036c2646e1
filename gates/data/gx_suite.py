"""The dataset checks as a great-expectations suite, with GX Data Docs (extra ``gx``).

``sftgate data TRAIN.jsonl --expectations`` loads the records into a pandas DataFrame (their own
top-level fields, plus ``sftgate_*`` columns the dataset gate derives: line, format, validity,
lengths, last role, duplicate key, completion-schema validity), runs a built-in expectation
suite on it in an ephemeral GX context and writes the Data Docs HTML (``index.html``) into a
folder beside the report. ``--expectations-suite FILE`` also runs a team's own suite (GX 1.x
JSON: ``{"name": ..., "expectations": [{"type": "expect_...", "kwargs": {...}}]}``) on the same
DataFrame, so it may use the data's own columns (``prompt``, ``completion``, ``label``...).

The core gates never need GX: it is imported here, lazily, and only for these options. Every
failed expectation is one ``expectation_failed`` finding at the line of its first unexpected row.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, InputError, Rule, Severity
from sftgate.gates.readers.textfile import read_text

GATE = "expectations"
DOCS_DIR = "sftgate-data-docs"
RULES: tuple[Rule, ...] = (
    Rule("GX001", "expectation_failed", Severity.ERROR, GATE,
         "a great-expectations expectation failed on the dataset",
         "The suite (built-in or the team's own) encodes what the data must look like.",
         "Open the Data Docs (index.html) for the unexpected values; fix the records or the suite.",
         "expect_column_values_to_be_unique(sftgate_key): 3 duplicates"),
    Rule("GX002", "expectation_not_run", Severity.ERROR, GATE,
         "an expectation of the suite could not run (unknown column, bad kwargs)",
         "A suite that silently skips an expectation passes data it should not.",
         "Fix the suite: the column must exist in the DataFrame (the data's top-level keys or sftgate_*)."),
)
R = {rule.name: rule for rule in RULES}
INSTALL_HINT = "pip install 'sftgate[gx]' (great-expectations, pandas)"
MAX_LINES = 20


def _import_gx() -> Any:
    try:
        logging.getLogger("great_expectations").setLevel(logging.ERROR)
        import great_expectations as gx
    except ImportError:
        raise InputError("--expectations needs great-expectations", hint=INSTALL_HINT) from None
    return gx


# --------------------------------------------------------------------------- the DataFrame


def dataframe(source: Any, *, schema: Any = None) -> Any:
    """The records of ``source`` as a DataFrame: their top-level fields plus ``sftgate_*`` columns."""
    import pandas as pd

    from sftgate.gates.adapter.json_parse import parse_strict
    from sftgate.gates.data.record_checks import (
        _UNSURE,
        check_messages,
        check_prompt_completion,
        fast_strict_parse,
        final_completion,
        record_format,
    )
    from sftgate.gates.readers.jsonl_reader import ReadIssue

    rows: list[dict[str, Any]] = []
    derived: dict[str, list[Any]] = {k: [] for k in (
        "sftgate_line", "sftgate_format", "sftgate_valid", "sftgate_prompt_chars", "sftgate_completion_chars",
        "sftgate_last_role", "sftgate_key", "sftgate_completion_schema_ok")}
    for line, obj in source:
        if type(obj) is dict:
            fmt = record_format(obj)
            problems = (check_prompt_completion(obj) if fmt == "prompt_completion"
                        else check_messages(obj) if fmt == "messages" else ["unknown"])
            rows.append(obj)
        else:
            fmt = "invalid_json" if type(obj) is ReadIssue else "not_an_object"
            problems = [fmt]
            rows.append({})
        completion = final_completion(obj, fmt) if fmt in ("prompt_completion", "messages") else None
        key: str
        last_role: Any
        if fmt == "prompt_completion":
            prompt_chars = len(obj.get("prompt") or "") if isinstance(obj.get("prompt"), str) else 0
            last_role = "assistant"
            key = json.dumps([obj.get("prompt"), obj.get("completion")], sort_keys=True, default=str)
        elif fmt == "messages":
            msgs = obj.get("messages") if isinstance(obj.get("messages"), list) else []
            prompt_chars = sum(len(m.get("content") or "") for m in msgs[:-1] if isinstance(m, dict)
                               and isinstance(m.get("content"), str))
            last_role = msgs[-1].get("role") if msgs and isinstance(msgs[-1], dict) else None
            key = json.dumps(msgs, sort_keys=True, default=str)
        else:
            prompt_chars, last_role, key = 0, None, f"line {line}"
        schema_ok = None
        if schema is not None and completion is not None:
            value = fast_strict_parse(completion)
            if value is _UNSURE or schema.problems(value):
                value, problem = parse_strict(completion)
                schema_ok = problem is None and not schema.problems(value)
            else:
                schema_ok = True
        derived["sftgate_line"].append(line)
        derived["sftgate_format"].append(fmt)
        derived["sftgate_valid"].append(not problems)
        derived["sftgate_prompt_chars"].append(prompt_chars)
        derived["sftgate_completion_chars"].append(len(completion) if completion is not None else 0)
        derived["sftgate_last_role"].append(last_role)
        derived["sftgate_key"].append(key)
        derived["sftgate_completion_schema_ok"].append(schema_ok)
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame()
    frame = frame.drop(columns=[c for c in frame.columns if str(c).startswith("sftgate_")])
    for column, values in derived.items():
        frame[column] = values
    return frame


# --------------------------------------------------------------------------- suites


def builtin_suite(gx: Any, *, with_schema: bool) -> Any:
    """The dataset gate's checks as expectations; ``meta.sftgate_rule`` names the rule each mirrors."""
    e = gx.expectations
    items = [
        (e.ExpectTableRowCountToBeBetween(min_value=1), "empty_dataset"),
        (e.ExpectColumnValuesToBeInSet(column="sftgate_format", value_set=["prompt_completion", "messages"]),
         "unknown_format"),
        (e.ExpectColumnUniqueValueCountToBeBetween(column="sftgate_format", min_value=1, max_value=1),
         "mixed_formats"),
        (e.ExpectColumnValuesToBeInSet(column="sftgate_valid", value_set=[True]), "missing_field"),
        (e.ExpectColumnValuesToBeBetween(column="sftgate_completion_chars", min_value=1), "empty_field"),
        (e.ExpectColumnValuesToBeInSet(column="sftgate_last_role", value_set=["assistant"]),
         "last_turn_not_assistant"),
        (e.ExpectColumnValuesToBeUnique(column="sftgate_key"), "duplicate_example"),
    ]
    if with_schema:
        items.append((e.ExpectColumnValuesToBeInSet(column="sftgate_completion_schema_ok", value_set=[True]),
                      "completion_schema"))
    suite = gx.ExpectationSuite(name="sftgate-dataset")
    for expectation, rule in items:
        expectation.meta = {"sftgate_rule": rule}
        suite.add_expectation(expectation)
    return suite


def read_suite_file(path: str | Path) -> dict[str, Any]:
    """A team's suite from a GX 1.x JSON file, as a dict; InputError naming the file when it is not one."""
    p = Path(path)
    text = read_text(p, display=str(path), expected="a GX expectation suite JSON file", encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not a JSON expectation suite ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise InputError(
            f"{path}: not a GX expectation suite (no 'expectations' list)",
            hint='e.g. {"name": "team", "expectations": [{"type": "expect_column_values_to_not_be_null", '
                 '"kwargs": {"column": "prompt"}}]}',
        )
    data.setdefault("name", p.stem)
    data.pop("id", None)
    for item in data["expectations"]:
        if isinstance(item, dict):
            item.pop("id", None)
            if "expectation_type" in item and "type" not in item:  # the 0.x key
                item["type"] = item.pop("expectation_type")
    return {k: v for k, v in data.items() if k in ("name", "expectations", "meta", "notes")}


def make_suite(gx: Any, data: dict[str, Any], source: str) -> Any:
    """A GX suite from :func:`read_suite_file`'s dict (needs a context: GX binds suites to one)."""
    try:
        return gx.ExpectationSuite(**json.loads(json.dumps(data)))
    except Exception as exc:
        raise InputError(f"{source}: not a valid GX expectation suite ({str(exc).splitlines()[0][:200]})") from None


# --------------------------------------------------------------------------- running


def run_suites(frame: Any, suites: list[Any], *, docs_dir: str | Path, asset: str) -> list[Any]:
    """Validate ``frame`` against ``suites`` in an ephemeral context; write Data Docs to ``docs_dir``.

    ``suites`` are callables ``gx -> ExpectationSuite``, called once the context exists.
    """
    gx = _import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    docs = Path(docs_dir).resolve()
    for site in list(context.get_config().data_docs_sites or {}):
        context.delete_data_docs_site(site)
    context.add_data_docs_site(site_name="sftgate", site_config={
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    batch_def = context.data_sources.add_pandas("sftgate").add_dataframe_asset(asset) \
        .add_batch_definition_whole_dataframe("all")
    definitions = []
    for make in suites:
        suite = context.suites.add(make(gx))
        definitions.append(context.validation_definitions.add(
            gx.ValidationDefinition(data=batch_def, suite=suite, name=f"{asset}-{suite.name}")))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name="sftgate", validation_definitions=definitions,
        actions=[gx.checkpoint.UpdateDataDocsAction(name="data-docs", site_names=["sftgate"])],
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["sftgate_line"]},
    ))
    result = checkpoint.run(batch_parameters={"dataframe": frame})
    return list(result.run_results.values())


def check(
    *,
    train: str | Path,
    eval: str | Path | None = None,
    suite: str | Path | None = None,
    builtin: bool = True,
    output_schema: Any = None,
    exact_keys: bool = False,
    docs_dir: str | Path = DOCS_DIR,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Run the built-in suite (and ``suite``) on each file; a finding per failed expectation."""
    from sftgate.gates.data.dataset_schema import _load_schema
    from sftgate.gates.readers.dataset_io import open_dataset

    metrics = metrics if metrics is not None else {}
    _import_gx()  # fail early, with the install hint
    schema = _load_schema(output_schema, exact_keys)
    team = read_suite_file(suite) if suite is not None else None
    docs = Path(docs_dir)
    evaluated = failed = 0
    for role, path in (("train", train), ("eval", eval)):
        if path is None:
            continue
        source = open_dataset(path)
        frame = dataframe(source, schema=schema)
        suites: list[Any] = []
        if builtin:
            suites.append(functools.partial(builtin_suite, with_schema=schema is not None))
        if team is not None:
            suites.append(functools.partial(make_suite, data=team, source=str(suite)))
        if not suites:
            continue
        lines = frame["sftgate_line"].tolist() if len(frame) else []
        for validation in run_suites(frame, suites, docs_dir=docs, asset=role):
            for r in validation.results:
                evaluated += 1
                if r.success:
                    continue
                failed += 1
                yield _finding(source, r, lines)
    index = docs / "index.html"
    metrics.update({"expectations": evaluated, "failed": failed})
    if index.exists():
        metrics["data_docs"] = str(index)


def _finding(source: Any, r: Any, lines: list[int]) -> Finding:
    config = r.expectation_config
    kwargs = {k: v for k, v in dict(config.kwargs).items() if k != "batch_id"}
    column = kwargs.get("column")
    res = dict(r.result or {})
    mirrored = (config.meta or {}).get("sftgate_rule")
    message = _raised(r.exception_info)
    if message is not None:
        return R["expectation_not_run"].finding(
            f"{config.type}({column or ''}) could not run: {message.splitlines()[0][:200]}",
            f"{source.display}:{column or config.type}",
            evidence={"expectation": config.type, "kwargs": kwargs})
    bad_lines: list[int] = []
    for i in (res.get("unexpected_index_list") or [])[:MAX_LINES]:
        if isinstance(i, dict) and "sftgate_line" in i:  # unexpected_index_column_names
            bad_lines.append(int(i["sftgate_line"]))
        elif isinstance(i, int) and 0 <= i < len(lines):
            bad_lines.append(lines[i])
    count = res.get("unexpected_count")
    where = source.location(bad_lines[0]) if bad_lines else f"{source.display}:{column or config.type}"
    what = f"{count} unexpected value(s)" if count is not None else f"observed {res.get('observed_value')!r}"
    evidence: dict[str, Any] = {"expectation": config.type, "kwargs": kwargs, "unexpected_count": count,
                                "lines": bad_lines,
                                "values": [str(v)[:80] for v in (res.get("partial_unexpected_list") or [])[:10]]}
    if mirrored:
        evidence["sftgate_rule"] = mirrored
    if "observed_value" in res:
        evidence["observed_value"] = str(res["observed_value"])[:200]
    return R["expectation_failed"].finding(
        f"{config.type}({column or ''}): {what}" + (f" (mirrors {mirrored})" if mirrored else ""),
        where, evidence=evidence, line=bad_lines[0] if bad_lines and source.line_based else None)


def _raised(info: Any) -> str | None:
    """The message of an exception GX caught while running an expectation (flat or per metric)."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "the expectation raised")
    for sub in info.values():
        if isinstance(sub, dict) and sub.get("raised_exception"):
            return str(sub.get("exception_message") or "the expectation raised")
    return None
