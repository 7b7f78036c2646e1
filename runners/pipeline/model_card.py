"""Write a release's model card when it has none: promotion does, and ``sftgate release DIR --write-card``.

The card (:mod:`sftgate.gates.release.card_text`) is written atomically; in a folder with a
manifest, ``README.md`` is added to the manifest too (rewritten atomically), so the release gate
still finds every file listed. An existing card is never touched: the ``model-card`` gate judges it.

::

    from sftgate.runners.pipeline.model_card import write_card_if_missing
    write_card_if_missing(Path("runs/x/release"), config=cfg)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sftgate.gates.readers import atomic
from sftgate.gates.release.card_text import card_facts, card_text
from sftgate.gates.release.manifest import MANIFEST_NAME
from sftgate.gates.release.model_card import CARD_NAME


def card_settings(config: Any) -> dict[str, Any]:
    """The card's inputs an sftgate config gives: ``release.license``, ``release.datasets``, the base's
    Hub ID (``model.id``) and the base's local folder or cache snapshot (where its own card is)."""
    if config is None:
        return {}
    from sftgate.gates.readers.tokenizer_io import model_dir_from_config

    return {
        "license": config.get("release.license"),
        "datasets": config.get("release.datasets"),
        "base_model": config.get("model.id"),
        "base_dir": model_dir_from_config(config),
    }


def write_card_if_missing(folder: Path, *, config: Any = None, **settings: Any) -> Path | None:
    """Write ``folder/README.md`` when missing (returns its path; None when a card was there)."""
    card = folder / CARD_NAME
    if card.exists():
        return None
    options = {**card_settings(config), **{k: v for k, v in settings.items() if v is not None}}
    text = card_text(card_facts(folder, **options))
    atomic.write_text(card, text)
    _add_to_manifest(folder, card)
    return card


def _add_to_manifest(folder: Path, card: Path) -> None:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # the release gate reports an unreadable manifest
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return
    data = card.read_bytes()
    manifest["files"][CARD_NAME] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest["files"] = dict(sorted(manifest["files"].items()))
    manifest["model_card"] = "written by sftgate"
    atomic.write_text(path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
