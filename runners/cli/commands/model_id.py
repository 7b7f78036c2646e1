"""sftgate model-id ID: check one model ID (or several) before a job is queued."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sftgate.gates.config import model_id
from sftgate.gates.frame import registry
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.report import Report

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO

HELP = "check a model ID: Hub naming rules, dash-separated IDs, URLs, local folders, pinned revisions"
DESCRIPTION = """\
Check that ID is something from_pretrained will load: a valid Hub ID (org/name) or an existing
local model folder. Catches the dash-separated form (mistralai-Mistral-7B-Instruct), cache
folder names (models--org--name), URLs, missing namespaces (gpt2), Hub naming-rule violations
and missing local folders, each with the corrected ID as the suggestion. Offline by default:
the organisation table and the local HF cache (HF_HOME / HF_HUB_CACHE) resolve names.

--release demands a 40-hex commit as the revision (a branch or a tag moves).
--online also asks the Hub whether the repo exists, is gated and has the revision
(huggingface_hub; HF_TOKEN is used and never printed; HF_HUB_OFFLINE=1 is respected).

examples:
  sftgate model-id mistralai-Mistral-7B-Instruct           # fails: dash_separated_id, fix: mistralai/Mistral-7B-Instruct
  sftgate model-id Qwen/Qwen2.5-0.5B-Instruct              # passes
  sftgate model-id Qwen/Qwen2.5-0.5B-Instruct --revision main --release   # fails: unpinned_revision
  sftgate model-id ./checkpoints/base --format json
  sftgate model-id meta-llama/Llama-3.1-8B-Instruct --online
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ids", nargs="+", metavar="ID", help="a Hub ID (org/name) or a local model folder")
    parser.add_argument("--revision", metavar="REV", help="branch, tag or 40-hex commit")
    parser.add_argument("--release", action="store_true", help="require a pinned 40-hex commit revision")
    parser.add_argument("--online", action="store_true",
                        help="also ask the Hub: existence, gated access, revision (off by default)")
    parser.add_argument("--kind", choices=("model", "tokenizer", "adapter", "publish"), default="model",
                        help="what the ID names (publish: a repo to push to); default model")


def run(args: argparse.Namespace, io: IO) -> Report:
    refs = [
        model_id.ModelRef(
            value=value,
            location="ID" if len(args.ids) == 1 else f"ID#{i + 1}",
            revision=args.revision,
            revision_location="--revision" if args.revision is not None else None,
            kind=args.kind,
        )
        for i, value in enumerate(args.ids)
    ]
    spec = registry.get("model-id")
    report = Report(command="model-id " + " ".join(args.ids))
    report.add(run_gate(spec.name, spec.stage, model_id.check, ids=refs, release=args.release,
                        online=args.online, env=io.env))
    return report
