"""sftgate release DIR [--publish REPO_ID]: the gate before a model is published."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from sftgate.gates.frame.core import Stage, UsageError
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.report import Report
from sftgate.gates.release import model_card
from sftgate.gates.release import release as release_gate

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO

HELP = "check a model folder before publishing (manifest, gates, artifacts, pinned base); --publish uploads"
DESCRIPTION = """\
Check DIR, a promoted release (or any model or adapter folder), before it is published:

  - every file matches the manifest sftgate-manifest.json (size and sha256)   manifest_mismatch
  - every gate recorded in the manifest passed; a required skip blocks        gate_failed, gate_skipped
  - the artifacts serving needs are there, safetensors only, no remote code   missing_artifact,
                                                                              unsafe_weights, remote_code
  - the base model is pinned to a 40-hex commit                               unpinned_base_revision
  - README.md is a model card the Hub accepts: base_model (the manifest's),    model_card_invalid
    library_name, pipeline_tag, datasets; a license (carried from the base)   license_missing
  - an adapter names its base by Hub ID, not a local path or null             adapter_base_not_hub_id
  - an adapter holds every LoRA tensor, non-empty, with its rank (ZeRO-3)     adapter_incomplete
  - --profile vllm|tgi: what that server needs (vLLM's LoRA limits, TGI's     serving_* rules
    chat template in tokenizer_config.json, a template for system/tool turns)

--write-card writes README.md when it is missing (atomically; metadata from the manifest, the
license from release.license or the base model's own card, datasets from release.datasets) and
lists it in the manifest. An existing card is never rewritten. `sftgate run` writes the card when
it promotes.

With --publish REPO_ID the folder is uploaded with huggingface_hub, only when the gate passed and
only with a token from the environment variable HF_TOKEN (never printed; the repo is created
private unless --public). Without HF_TOKEN it is a dry run that lists what would be uploaded.

`sftgate run CONFIG` promotes a model into release.dir after every gate passed; this command is the
last check on that folder (or on one built elsewhere).

examples:
  sftgate release runs/demo/release
  sftgate release runs/demo/release --format json --junit-xml reports/release.xml
  sftgate release runs/demo/release --publish my-org/my-model            # dry run without HF_TOKEN
  HF_TOKEN=hf_xxx sftgate release runs/demo/release --publish my-org/my-model
  sftgate release runs/demo/release --config sftgate.yaml --publish      # repo from release.repo_id
  sftgate release out/adapter --allow-unpinned                           # an adapter, base not pinned
  sftgate release runs/demo/release --config sftgate.yaml --write-card   # add the model card
  sftgate release runs/demo/release --profile vllm                       # what vLLM can serve
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="the release (or model / adapter) folder")
    parser.add_argument("--publish", nargs="?", const="", metavar="REPO_ID",
                        help="upload to this Hub model repo after the gate passed (default: release.repo_id)")
    parser.add_argument("--config", metavar="CONFIG",
                        help="sftgate.yaml: release.profile, release.require_pinned_revision, release.repo_id")
    parser.add_argument("--profile", choices=("transformers", "mistral", "vllm", "tgi"),
                        help="the serving stack: which artifacts it needs (default: release.profile, else transformers)")
    parser.add_argument("--write-card", action="store_true",
                        help="write README.md (the model card) when it is missing, and list it in the manifest")
    parser.add_argument("--allow-unpinned", action="store_true",
                        help="an unpinned base revision is a warning, not an error")
    parser.add_argument("--require-gate", action="append", default=[], metavar="GATE",
                        help="a gate that must be recorded as passed (repeatable), e.g. merge-equivalence")
    parser.add_argument("--public", action="store_true", help="create the Hub repo public (default: private)")


def run(args: argparse.Namespace, io: IO) -> Report:
    cfg = None
    if args.config:
        from sftgate.gates.readers import config as config_mod

        cfg = config_mod.load(args.config)
    profile = args.profile or (cfg.get("release.profile") if cfg else None) or "transformers"
    pinned = not args.allow_unpinned and (cfg.get("release.require_pinned_revision", True) if cfg else True)
    folder = Path(args.dir)
    from sftgate.runners.pipeline.folder_swap import recover

    for done in recover(folder):  # a promotion killed mid-swap: put the previous release back first
        if not args.quiet:
            io.say(f"sftgate: {done}")
    report = Report(command=f"release {args.dir}")
    if args.write_card and folder.is_dir():
        from sftgate.runners.pipeline.model_card import write_card_if_missing

        written = write_card_if_missing(folder, config=cfg)
        if written is not None:
            report.artifacts["model_card"] = str(written)
    result = report.add(run_gate(
        release_gate.GATE, Stage.RELEASE, release_gate.check,
        model_dir=folder, profile=profile, require_pinned_revision=pinned, required_gates=args.require_gate,
    ))
    card = report.add(run_gate(
        model_card.GATE, Stage.RELEASE, model_card.check, model_dir=folder,
        license_hint=cfg.get("release.license") if cfg else None,
    ))
    adapter_ok = True
    if (folder / "adapter_config.json").is_file():  # an adapter: every LoRA tensor saved, non-empty
        from sftgate.gates.adapter import completeness

        adapter_ok = report.add(run_gate(completeness.GATE, Stage.ADAPTER, completeness.check, adapter_dir=folder)).passed
    report.artifacts["release"] = str(folder)
    if args.publish is None:
        return report
    repo_id = args.publish or (cfg.get("release.repo_id") if cfg else None)
    if not repo_id:
        raise UsageError("--publish needs a REPO_ID (or --config with release.repo_id)",
                         hint="sftgate release DIR --publish my-org/my-model")
    if not (result.passed and card.passed and adapter_ok):
        if not args.quiet:
            io.say(f"not publishing {folder}: the release gates did not pass")
        return report
    from sftgate.runners.pipeline.publish import publish

    say = (lambda _msg: None) if args.quiet else io.say
    files = publish(folder, repo_id, env=io.env, say=say, private=not args.public, profile=profile,
                    require_pinned_revision=pinned, gate_checked=True)
    mode = "published" if (io.env.get("HF_TOKEN") or "").strip() else "dry run"
    report.artifacts["publish"] = f"{mode}: {len(files)} files to https://huggingface.co/{repo_id}"
    return report
