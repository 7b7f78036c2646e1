"""Where a run's files go: one place, shared by the pipeline and the one-stage commands.

Also what those folders must never be: :func:`protected_paths` lists the config's own inputs
(the config, the data, the base model, the tokenizer, the templates) that no output folder may
be or hold (:func:`sftgate.runners.pipeline.folder_swap.ensure_replaceable`).
"""

from __future__ import annotations

from pathlib import Path

from sftgate.gates.readers import config as config_mod

# Config keys naming the inputs an output folder must never be or hold, and what each one is.
INPUT_KEYS = (
    ("data.train", "the training data"), ("data.eval", "the eval data"), ("data.cases", "the fixed cases"),
    ("data.output_schema", "the output schema"), ("model.id", "the base model"),
    ("model.tokenizer", "the tokenizer"), ("prompt.chat_template", "the chat template"),
    ("prompt.inference_chat_template", "the inference chat template"),
)


def run_dir_for(config: config_mod.Config) -> Path:
    """``train.output_dir``, else ``sftgate-runs/<config name>`` beside the config."""
    out = config.path_of("train.output_dir")
    return out if out is not None else config.base_dir / "sftgate-runs" / config.path.stem


def release_dir_for(config: config_mod.Config, run_dir: Path) -> Path:
    out = config.path_of("release.dir")
    return out if out is not None else run_dir / "release"


def protected_paths(config: config_mod.Config) -> list[tuple[Path, str]]:
    """``(path, what)`` of every input the config names that exists, the config itself first."""
    out = [(config.path, "the config")]
    for key, what in INPUT_KEYS:
        path = config.path_of(key) if isinstance(config.get(key), str) else None
        if path is not None and path.exists():
            out.append((path, f"{what} ({key})"))
    return out


def output_targets(config: config_mod.Config, run_dir: Path) -> list[tuple[Path, str, list[tuple[Path, str]]]]:
    """The folders a run replaces as a whole, each with the setting that names it and what it must not hold."""
    inputs = protected_paths(config)
    adapter, merged, release = run_dir / "adapter", run_dir / "merged", release_dir_for(config, run_dir)
    return [
        (adapter, "train.output_dir", inputs),
        (merged, "train.output_dir", [*inputs, (adapter, "the adapter")]),
        (release, "release.dir", [*inputs, (run_dir, "the run folder"), (adapter, "the adapter"),
                                  (merged, "the merged model")]),
    ]
