"""The provenance manifest of a training run: building it, and reading it and the job ledger back.

:func:`build_manifest` records the base model (revision resolved to a commit, or a content
fingerprint of a local folder), the data files (sha256, bytes, records), the template hash, the
LoRA and training settings and the library versions; the gate ``provenance`` checks it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers.model_folder import list_model_folder
from sftgate.gates.release.release import sha256_file

__all__ = [
    "ADAPTER_MANIFEST",
    "MANIFEST_NAME",
    "build_manifest",
    "count_records",
    "file_info",
    "library_versions",
    "load_manifest",
    "model_fingerprint",
    "read_ledger",
    "resolve_base",
]

MANIFEST_NAME = "provenance.json"
ADAPTER_MANIFEST = "sftgate-provenance.json"
PACKAGES = ("sftgate", "torch", "transformers", "peft", "datasets", "accelerate", "tokenizers", "safetensors")
FULL_HASH_LIMIT = 2 << 30  # folders above 2 GiB in total get a header fingerprint, not a full hash
PARTIAL_HASH_OVER = 64 << 20  # in header mode, other files over 64 MiB: their first and last MiB


def count_records(path: Path) -> int | None:
    """Records in a data file: non-blank JSONL lines, a JSON array's items, Parquet/Arrow rows."""
    suffix = path.suffix.lower()
    try:
        if path.is_dir():
            state = path / "state.json"
            if state.is_file():
                info = json.loads((path / "dataset_info.json").read_text("utf-8")) if (path / "dataset_info.json").is_file() else {}
                splits = info.get("splits") or {}
                total = sum(int(s.get("num_examples", 0)) for s in splits.values() if isinstance(s, dict))
                return total or None
            return None
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return int(pq.read_metadata(str(path)).num_rows)
        if suffix == ".json":
            value = json.loads(path.read_text("utf-8-sig"))
            return len(value) if isinstance(value, list) else 1
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    except (OSError, ValueError, ImportError):
        return None


def file_info(path: str | os.PathLike[str], *, records: bool = True) -> dict[str, Any]:
    """``{"path", "sha256", "bytes"[, "records"]}`` of a data file (a folder: every file hashed in order)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: does not exist", hint="paths in the config are relative to the config file")
    if p.is_dir():
        digest = hashlib.sha256()
        size = 0
        for child in sorted(q for q in p.rglob("*") if q.is_file()):
            digest.update(child.relative_to(p).as_posix().encode() + b"\0" + sha256_file(child).encode())
            size += child.stat().st_size
        out: dict[str, Any] = {"path": str(p), "sha256": digest.hexdigest(), "bytes": size}
    else:
        out = {"path": str(p), "sha256": sha256_file(p), "bytes": p.stat().st_size}
    if records:
        out["records"] = count_records(p)
    return out


def model_fingerprint(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A content fingerprint of a model folder: every entry of the one walk of it.

    The walk is :func:`sftgate.gates.readers.model_folder.list_model_folder`: subfolders, dot-files
    and ``__pycache__`` included, so a file added anywhere changes the fingerprint. Each regular file
    adds its path, size and sha256; a symlink or special file adds its kind and link text (never
    followed). Above 2 GiB in total, safetensors files add their header instead of their sha256,
    and other files over 64 MiB their first and last MiB (``kind: header``).
    """
    listing = list_model_folder(Path(folder).resolve())
    sizes = {rel: listing.path(rel).stat().st_size for rel in listing.files}
    total = sum(sizes.values())
    kind = "full" if total <= FULL_HASH_LIMIT else "header"
    digest = hashlib.sha256()
    for rel in listing.files:
        path = listing.path(rel)
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0" + str(sizes[rel]).encode() + b"\0")
        if kind == "header" and rel.endswith(".safetensors"):
            digest.update(_safetensors_header(path))
        elif kind == "header" and sizes[rel] > PARTIAL_HASH_OVER:
            digest.update(_ends(path))
        else:
            digest.update(sha256_file(path).encode())
    for odd in listing.odd:
        digest.update(f"{odd.rel}\0{odd.what}\0{odd.target}\0".encode("utf-8", "surrogateescape"))
    weights = sum(size for rel, size in sizes.items() if rel.endswith((".safetensors", ".bin", ".pt", ".pth")))
    return {"sha256": digest.hexdigest(), "kind": kind, "files": len(listing.files), "weight_bytes": weights}


def _safetensors_header(path: Path) -> bytes:
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return head
        size = int.from_bytes(head, "little")
        return head + handle.read(min(size, 100 << 20))


def _ends(path: Path) -> bytes:
    with open(path, "rb") as handle:
        first = handle.read(1 << 20)
        handle.seek(-(1 << 20), os.SEEK_END)
        return hashlib.sha256(first + handle.read()).hexdigest().encode()


def resolve_base(model_id: str, revision: str | None, local: Path | None) -> dict[str, Any]:
    """``base_model`` of the manifest: id, revision, resolved_revision, and a fingerprint when local."""
    from sftgate.gates.config.hub_id_grammar import is_commit
    from sftgate.gates.readers.hf_cache import snapshot_revision

    out: dict[str, Any] = {"id": model_id, "revision": revision, "resolved_revision": None}
    if local is not None and local.is_dir():
        found = snapshot_revision(local.resolve())
        if found is not None and found[1]:
            out["hub_id"], out["resolved_revision"] = found
        else:
            out["local_path"] = str(local.resolve())
            out["fingerprint"] = model_fingerprint(local)
            out["resolved_revision"] = "local:" + out["fingerprint"]["sha256"][:40]
        return out
    if revision and is_commit(revision):
        out["resolved_revision"] = revision
        return out
    out["resolved_revision"] = _cached_commit(model_id, revision or "main")
    return out


def _cached_commit(repo_id: str, ref: str) -> str | None:
    from sftgate.gates.readers.hf_cache import cache_dir, repo_id_to_folder

    try:
        text = (cache_dir() / repo_id_to_folder(repo_id) / "refs" / ref).read_text("utf-8").strip()
    except OSError:
        return None
    return text or None


def library_versions() -> dict[str, str | None]:
    """Versions of Python and the libraries a run depends on (read from metadata: nothing imported)."""
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def build_manifest(
    config: Any,
    *,
    job_id: str,
    lora: Mapping[str, Any],
    train: Mapping[str, Any],
    template_sha256: str | None,
    template_source: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance manifest of a run of ``config`` (see the module docstring)."""
    import datetime as _dt

    local = config.path_of("model.id")
    base = resolve_base(str(config.get("model.id")), config.get("model.revision"),
                        local if local is not None and local.is_dir() else None)
    datasets: dict[str, Any] = {}
    for key in ("train", "eval", "cases", "output_schema"):
        path = config.path_of(f"data.{key}")
        if path is not None and path.exists():
            datasets[key] = file_info(path, records=key != "output_schema")
    manifest: dict[str, Any] = {
        "sftgate_provenance": 1,
        "job_id": job_id,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": {"path": str(config.path), "sha256": sha256_file(config.path)},
        "base_model": base,
        "datasets": datasets,
        "template": {"sha256": template_sha256, "source": template_source},
        "prompt": {"system": config.get("prompt.system"), "template": config.get("prompt.template")},
        "lora": dict(lora),
        "train": dict(train),
        "versions": library_versions(),
    }
    if extra:
        manifest.update(extra)
    return manifest



def load_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / (ADAPTER_MANIFEST if (p / ADAPTER_MANIFEST).is_file() else MANIFEST_NAME)
    try:
        value = json.loads(p.read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{p}: no provenance manifest", hint="train with `sftgate train` or `sftgate run`") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{p}: unreadable provenance manifest ({exc})") from None
    if not isinstance(value, dict):
        raise InputError(f"{p}: a provenance manifest must be a JSON object")
    return value



def read_ledger(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every entry of a JSONL ledger, oldest first; a missing file is []; torn or invalid lines are skipped."""
    try:
        lines = Path(path).read_text("utf-8", errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out
