"""``sftgate check`` over a corpus of real peer configs: formats taken, findings, and the dash form.

Point it at the example folders of the tools (a clone or an archive of each repository's
``examples/``); it runs the preflight on every YAML file, offline, and prints how many files each
format took, how many findings of each rule fired, and how the dash form of every Hub ID the
corpus names is diagnosed (flagged, certain and right, a warning with the right reading listed):

    git -C axolotl archive HEAD examples | tar -x -C corpus/axolotl
    python benchmarks/bench_peer_configs.py corpus/axolotl corpus/LLaMA-Factory corpus/trl
    python benchmarks/bench_peer_configs.py corpus/axolotl --samples unknown_config_key
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", type=Path, help="folders of example configs")
    parser.add_argument("--samples", metavar="RULE", help="print where RULE fired")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from sftgate.gates.config.hub_id_grammar import is_valid_repo_id
    from sftgate.gates.config.model_id_diagnosis import diagnose
    from sftgate.gates.config.peer.fields import fields_for, recognise
    from sftgate.gates.frame.core import Severity, SftgateError
    from sftgate.gates.frame.preflight import run_preflight
    from sftgate.gates.readers import document

    formats: collections.Counter[str] = collections.Counter()
    rules: collections.Counter[tuple[str, str]] = collections.Counter()
    ids: set[str] = set()
    start = time.perf_counter()
    files = sorted(p for root in args.roots for p in root.rglob("*") if p.suffix in (".yml", ".yaml"))
    for path in files:
        try:
            doc = document.load(path)
            detection = recognise(doc)
            report = run_preflight(path)
        except SftgateError as exc:
            rules[("input", type(exc).__name__)] += 1
            continue
        formats[detection.format] += 1
        ids.update(f.value for f in fields_for(doc.data, detection)
                   if f.kind != "publish" and f.value.count("/") == 1 and is_valid_repo_id(f.value)
                   and not f.value.startswith((".", "/")))
        for gate in report.gates:
            for f in gate.findings:
                rules[(f.rule, f.severity.value)] += 1
                if f.rule == args.samples:
                    print(f"  {f.location}: {f.message}")
    seconds = time.perf_counter() - start
    print(f"{len(files)} files in {seconds:.1f}s; formats: {dict(formats.most_common())}")
    for (rule, severity), n in rules.most_common():
        print(f"  {n:5d} {rule} ({severity})")
    dash = collections.Counter()
    for repo_id in sorted(ids):
        d = diagnose(repo_id.replace("/", "-", 1))
        flagged = d.rule is not None and d.rule.name in ("dash_separated_id", "missing_namespace")
        certain = flagged and d.confident and d.severity is not Severity.WARNING
        listed = repo_id in (d.evidence.get("candidates") or [d.suggestion])
        dash.update({"ids": 1, "flagged": flagged, "certain": certain, "certain_right": certain and d.suggestion == repo_id,
                     "guess_listed": flagged and not certain and listed})
    print(f"dash form of {dash['ids']} Hub IDs: {dash['flagged']} flagged, {dash['certain']} certain "
          f"({dash['certain_right']} right), {dash['guess_listed']} guesses with the right reading listed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
