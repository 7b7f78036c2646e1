"""The base model's folder for the gates that read its ``config.json`` or its weights, found offline.

``model.id`` as a local folder (relative to the config), else the Hugging Face cache snapshot of
the ID at ``model.revision`` that holds ``config.json`` (``local_files_only``: never downloads).
``None`` when neither is there: the gate is then skipped, not failed, so ``sftgate check`` on a
CPU runner without the weights still runs every other gate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError


def model_config_dir_from_config(config: Any) -> Path | None:
    """The folder of the base's ``config.json``: local ``model.id``, or its cached snapshot."""
    value = config.get("model.id")
    if not value:
        return None
    local = config.path_of("model.id")
    if local is not None and local.is_dir():
        return local if (local / "config.json").is_file() else None  # type: ignore[no-any-return]
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(str(value), "config.json", revision=config.get("model.revision"))
    except Exception:  # an invalid repo id, a broken cache: not available offline
        return None
    return Path(found).parent if isinstance(found, str) else None


def weights_dir_from_config(config: Any) -> Path | None:
    """:func:`model_config_dir_from_config` when that folder also holds every safetensors file."""
    from sftgate.gates.readers.safetensors_rows import weight_files

    folder = model_config_dir_from_config(config)
    if folder is None:
        return None
    try:
        return folder if weight_files(folder) else None
    except InputError:  # a shard index whose shards are not (all) downloaded
        return None
