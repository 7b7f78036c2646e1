"""Where a run's files go: one place, shared by the pipeline and the one-stage commands."""

from __future__ import annotations

from pathlib import Path

from sftgate.gates.readers import config as config_mod


def run_dir_for(config: config_mod.Config) -> Path:
    """``train.output_dir``, else ``sftgate-runs/<config name>`` beside the config."""
    out = config.path_of("train.output_dir")
    return out if out is not None else config.base_dir / "sftgate-runs" / config.path.stem


def release_dir_for(config: config_mod.Config, run_dir: Path) -> Path:
    out = config.path_of("release.dir")
    return out if out is not None else run_dir / "release"
