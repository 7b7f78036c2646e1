"""The files the pipeline writes into a run folder and reads back: reports, the loss curve, JSON.

Where the run folder is comes from :mod:`sftgate.runners.pipeline.layout`.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

from sftgate.gates.frame.report import Report, to_json, to_markdown
from sftgate.gates.readers import atomic


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
    from sftgate.runners.work.sft_record import read_losses

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


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
