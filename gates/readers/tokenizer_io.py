"""Load a tokenizer from a LOCAL folder, and read what the tokenizer gates need next to it.

A tokenizer folder holds ``tokenizer.json`` (a ``tokenizers`` file), ``tokenizer.model``
(SentencePiece, or a tiktoken BPE file) or ``tekken.json`` (Mistral), plus
``tokenizer_config.json``, ``chat_template.jinja`` and ``generation_config.json`` when present.
``chat_template.jinja`` takes precedence over the template in ``tokenizer_config.json``, exactly
as transformers does. Nothing is downloaded and no remote code runs (``trust_remote_code=False``).

transformers is imported inside the functions, never at import time, so that
``sftgate --help`` stays fast and the core install needs no transformers.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import ConfigError, GateSkipped, InputError
from sftgate.gates.readers.textfile import read_text

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tekken.json")
GENERATION_CONFIG = "generation_config.json"
INSTALL_HINT = "pip install 'sftgate[tokenizer]' (transformers, tokenizers, sentencepiece, protobuf)"


# --------------------------------------------------------------------------- loading


def without_torch() -> bool:
    """Make this process load tokenizers as the ``tokenizer`` extra installs them: transformers
    without torch (``sys.modules["torch"] = None``, so ``find_spec("torch")`` is ``None`` and
    transformers treats it as absent; ``import torch`` raises ImportError). Tokenization does not
    depend on torch, and its import is two thirds of the tokenizer commands' start-up. For a
    process that will never need torch (the ``sftgate tokenizer`` and ``sftgate data`` scripts);
    no effect, and ``False``, once torch or transformers is imported."""
    import sys

    if "torch" in sys.modules or "transformers" in sys.modules:
        return sys.modules.get("torch", False) is None
    sys.modules["torch"] = None  # type: ignore[assignment]
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")  # no "PyTorch was not found" at import
    return True


def tokenizer_files(folder: Path) -> list[str]:
    """The tokenizer files present in ``folder``, in the order transformers prefers them."""
    return [name for name in TOKENIZER_FILES if (folder / name).is_file()]


def load_tokenizer(path: str | os.PathLike[str], *, chat_template: str | None = None) -> Any:
    """Load a transformers tokenizer from the local folder ``path``.

    ``chat_template`` (Jinja text) overrides the folder's template. Raises :class:`InputError`
    naming the folder when it is missing, holds no tokenizer file, or cannot be loaded.
    """
    folder = Path(path).expanduser()
    if not folder.exists():
        raise InputError(
            f"{folder}: tokenizer folder does not exist",
            hint="pass a local folder with tokenizer.json / tokenizer.model / tekken.json; "
            "sftgate never downloads (use `hf download ORG/NAME --local-dir DIR` first)",
        )
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder", hint="pass the tokenizer's folder, not one of its files")
    found = tokenizer_files(folder)
    if not found:
        raise InputError(
            f"{folder}: no tokenizer file (expected one of {', '.join(TOKENIZER_FILES)})",
            hint="save one with `tokenizer.save_pretrained(DIR)`",
        )
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InputError(f"loading {folder} needs transformers ({exc})", hint=INSTALL_HINT) from exc
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(
                str(folder), trust_remote_code=False, local_files_only=True, mistral_format=False
            )
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError, ... for bad folders
        detail = " ".join(str(exc).split())[:400]
        hint = "sftgate never runs remote code: the tokenizer must load with trust_remote_code=False"
        if "trust_remote_code" not in detail:
            hint = "check that the folder loads with AutoTokenizer.from_pretrained(DIR, local_files_only=True)"
        raise InputError(f"{folder}: cannot load the tokenizer: {type(exc).__name__}: {detail}", hint=hint) from exc
    if "tokenizer.json" not in found and "tekken.json" in found:
        _fill_tekken_specials(tokenizer, folder / "tekken.json")
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


@lru_cache(maxsize=8)
def _cached(folder: str, signature: tuple[Any, ...], chat_template: str | None) -> Any:
    return load_tokenizer(folder, chat_template=chat_template)


def load_tokenizer_cached(path: str | os.PathLike[str], *, chat_template: str | None = None) -> Any:
    """:func:`load_tokenizer`, memoised per folder content, for gates that only read the tokenizer.

    The prompt-alignment and EOS gates run one after the other on the same folder; loading a
    128k-token vocabulary twice costs seconds. Callers must not mutate the returned tokenizer.
    """
    folder = Path(path).expanduser().resolve()
    return _cached(str(folder), _signature(folder), chat_template)


def _signature(folder: Path) -> tuple[Any, ...]:
    out = []
    with contextlib.suppress(OSError):
        for child in sorted(folder.iterdir()):
            if child.is_file():
                st = child.stat()
                out.append((child.name, st.st_size, st.st_mtime_ns))
    return tuple(out)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers logs conversion chatter on stderr; sftgate's stderr is for its own lines."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        yield
        return
    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)


def _fill_tekken_specials(tokenizer: Any, tekken: Path) -> None:
    """A bare ``tekken.json`` converts without BOS/EOS names; take them from its control tokens
    (``special_tokens`` in newer files; the fixed ``<unk>``/``<s>``/``</s>`` in older ones)."""
    try:
        data = json.loads(tekken.read_text("utf-8"))
        names = {t.get("token_str") for t in data.get("special_tokens", []) if isinstance(t, dict)}
    except (OSError, ValueError):
        names = set()
    if not names:
        vocab = tokenizer.get_vocab()
        names = {name for name in ("<s>", "</s>", "<unk>") if name in vocab}
    for attr, name in (("bos_token", "<s>"), ("eos_token", "</s>"), ("unk_token", "<unk>")):
        if getattr(tokenizer, attr, None) is None and name in names:
            setattr(tokenizer, attr, name)


# --------------------------------------------------------------------------- generation config


def read_json_file(path: Path) -> Any:
    """Read a JSON file; a missing or invalid one is an :class:`InputError` naming FILE:LINE."""
    text = read_text(path, encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}", hint="fix the JSON syntax") from exc


def generation_config_path(path: str | os.PathLike[str]) -> Path | None:
    """``path`` itself when it is a file, else ``path/generation_config.json`` when present."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    candidate = p / GENERATION_CONFIG
    return candidate if candidate.is_file() else None


def generation_eos_ids(path: str | os.PathLike[str]) -> list[int] | None:
    """The ``eos_token_id`` of ``generation_config.json`` in folder ``path`` (or that file), as a list.

    ``None`` when there is no generation config or it names no EOS. An ``int`` becomes a
    one-item list. An unreadable or invalid file raises :class:`InputError`.
    """
    file = generation_config_path(path)
    if file is None:
        return None
    data = read_json_file(file)
    if not isinstance(data, dict):
        raise InputError(f"{file}: generation config must be a JSON object", hint="see GenerationConfig.save_pretrained")
    value = data.get("eos_token_id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | list):
        raise InputError(f"{file}: eos_token_id must be an int or a list of ints, got {value!r}")
    ids = [value] if isinstance(value, int) else value
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise InputError(f"{file}: eos_token_id must be an int or a list of ints, got {value!r}")
    return list(ids)


# --------------------------------------------------------------------------- config resolution


def _looks_like_path(value: str) -> bool:
    return value.startswith((".", "/", "~")) or "\\" in value or value.count("/") > 1


def tokenizer_dir_from_config(config: Any) -> Path:
    """The tokenizer folder a config names, found without network.

    ``model.tokenizer`` when set, else ``model.id`` when it is a local folder, else the Hugging
    Face cache snapshot of the ID (``local_files_only``: never downloads). Raises
    :class:`GateSkipped` when no tokenizer is available offline, :class:`ConfigError` when a
    configured local path does not exist.
    """
    key = "model.tokenizer" if config.get("model.tokenizer") else "model.id"
    value = config.get(key)
    if value:
        local = config.path_of(key)
        if local is not None and local.is_dir():
            return local  # type: ignore[no-any-return]
        if _looks_like_path(str(value)):
            raise ConfigError(
                f"{config.location(key)}: {local} does not exist",
                hint="paths in the config are relative to the config file",
            )
        revision = config.get("model.revision") if key == "model.id" else None
        cached = hf_cache_snapshot(str(value), revision)
        if cached is not None:
            return cached
    ident = value
    raise GateSkipped(
        f"no tokenizer available offline: '{ident}' is not a local folder and not in the Hugging Face cache "
        "(set model.tokenizer to a local folder, or download it first: "
        f"`hf download {ident} --include 'tokenizer*' '*.jinja' generation_config.json`)"
    )


def hf_cache_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The cached snapshot folder of ``repo_id`` that holds a tokenizer file, or ``None``. No network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for name in (*TOKENIZER_FILES, "tokenizer_config.json"):
        try:
            found = try_to_load_from_cache(repo_id, name, revision=revision)
        except Exception:  # an invalid repo id, a broken cache: not available offline
            return None
        if isinstance(found, str):
            folder = Path(found).parent
            if tokenizer_files(folder):
                return folder
    return None


def model_dir_from_config(config: Any) -> Path | None:
    """``model.id`` as a local folder, when it is one (its generation_config.json is the one served)."""
    local = config.path_of("model.id") if config.get("model.id") else None
    if local is not None and local.is_dir():
        return local  # type: ignore[no-any-return]
    if config.get("model.id"):
        return hf_cache_snapshot(str(config.get("model.id")), config.get("model.revision"))
    return None


# --------------------------------------------------------------------------- training records


def iter_records(
    path: str | os.PathLike[str], stats: dict[str, int] | None = None, *, display: str | None = None, progress: bool = False
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, record)`` for each JSON object of a training file (via :mod:`sftgate.gates.readers.dataset_io`).

    JSONL (``line`` is the 1-based line), a JSON array, Parquet or a ``save_to_disk`` folder
    (``line`` is the 1-based row). Values that are not JSON objects are counted in
    ``stats["skipped"]`` and skipped: the dataset-schema gate reports them. A missing file
    raises :class:`InputError`.
    """
    from sftgate.gates.readers.dataset_io import open_dataset

    counts = stats if stats is not None else {}
    counts.setdefault("skipped", 0)
    for line, value in open_dataset(Path(path), display=display, progress=progress):
        if isinstance(value, dict):
            yield line, value
        else:
            counts["skipped"] += 1


def file_signature(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    """(resolved path, size, mtime) of a file: a memo key that changes when the file does."""
    p = Path(path).expanduser().resolve()
    try:
        st = p.stat()
    except OSError:
        return (str(p), -1, -1)
    return (str(p), st.st_size, st.st_mtime_ns)
