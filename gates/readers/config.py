"""The sftgate config (``sftgate.yaml``): load, validate with jsonschema, explain errors.

A config error names the file, the key path and the line, and an unknown key gets a
"did you mean". Paths in the config are relative to the config file.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import ConfigError, InputError
from sftgate.gates.frame.escape import visible
from sftgate.gates.readers import document
from sftgate.gates.readers.document import Document, KeyPath, dotted

CONFIG_NAMES = ("sftgate.yaml", "sftgate.yml", "sftgate.json")

# Names users bring from peft's LoraConfig, transformers' TrainingArguments and other tools.
ALIASES = {
    "rank": "r",
    "lora_r": "r",
    "lora_alpha": "alpha",
    "lora_dropout": "dropout",
    "learning_rate": "lr",
    "num_train_epochs": "epochs",
    "max_length": "max_seq_len",
    "max_seq_length": "max_seq_len",
    "sequence_len": "max_seq_len",
    "per_device_train_batch_size": "batch_size",
    "gradient_accumulation_steps": "grad_accum",
    "name": "id",
    "model_name": "id",
    "model_name_or_path": "id",
    "base_model": "id",
    "validation": "eval",
    "test": "eval",
    "system_prompt": "system",
}


@cache
def config_schema() -> dict[str, Any]:
    text = resources.files("sftgate.gates").joinpath("schemas/config.schema.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


@dataclass
class Config:
    doc: Document

    @property
    def path(self) -> Path:
        return self.doc.path

    @property
    def data(self) -> dict[str, Any]:
        return self.doc.data  # type: ignore[no-any-return]

    @property
    def base_dir(self) -> Path:
        return self.doc.path.parent

    def get(self, dotted_key: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in dotted_key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def path_of(self, dotted_key: str) -> Path | None:
        """The file a config key names, resolved against the config's folder."""
        value = self.get(dotted_key)
        if value is None:
            return None
        p = Path(os.path.expanduser(str(value)))
        return p if p.is_absolute() else self.base_dir / p

    def require_file(self, dotted_key: str) -> Path | None:
        """Like :meth:`path_of`, but a named file that does not exist is a config error."""
        p = self.path_of(dotted_key)
        if p is not None and not p.exists():
            raise ConfigError(
                f"{self.location(dotted_key)}: {p} does not exist",
                hint="paths in the config are relative to the config file",
            )
        return p

    def location(self, dotted_key: str) -> str:
        return f"{self.path}:{dotted_key}"

    def line(self, dotted_key: str) -> int | None:
        return self.doc.line_of(tuple(dotted_key.split(".")))


def is_sftgate_config(doc: Document) -> bool:
    """A file is an sftgate config when it is named like one, says ``sftgate: 1``, or has
    ``model.id``; any other JSON or YAML is a foreign config whose model IDs are still checked."""
    if doc.path.name.lower().startswith("sftgate"):
        return True
    data = doc.data
    if not isinstance(data, dict):
        return False
    return "sftgate" in data or (isinstance(data.get("model"), dict) and "id" in data["model"])


def load(path: str | Path) -> Config:
    """Load and validate an sftgate config; raise :class:`ConfigError` on the first problems."""
    doc = document.load(path)
    validate(doc)
    return Config(doc)


@dataclass(frozen=True)
class ConfigProblem:
    """One config error: where (key path and line), what, and the likely intended key."""

    key_path: str
    line: int | None
    message: str
    did_you_mean: str | None = None

    def __str__(self) -> str:
        """One line: a key or value from the file is shown :func:`~sftgate.gates.frame.escape.visible`."""
        where = f"line {self.line}: {visible(self.key_path)}" if self.line else visible(self.key_path)
        guess = f"; did you mean '{self.did_you_mean}'?" if self.did_you_mean else ""
        return f"{where}: {visible(self.message)}{guess}"


def validate(doc: Document) -> None:
    """Raise :class:`ConfigError` listing every problem (its ``problems`` holds them, structured)."""
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{doc.path}: the config must be a mapping of sections (model, data, ...)")
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(config_schema())
    errors = sorted(validator.iter_errors(doc.data), key=lambda e: (doc.line_of(tuple(e.absolute_path)) or 0))
    if not errors:
        return
    problems = [problem for error in errors for problem in _explain(doc, error)]
    more = f"\n  … {len(problems) - 10} more" if len(problems) > 10 else ""
    exc = ConfigError(
        f"{doc.path}: invalid config\n  " + "\n  ".join(map(str, problems[:10])) + more,
        hint="`sftgate init DIR` writes a complete example config",
    )
    exc.problems = problems
    raise exc


def _explain(doc: Document, error: Any) -> list[ConfigProblem]:
    path: KeyPath = tuple(error.absolute_path)
    if error.validator != "additionalProperties":
        return [ConfigProblem(dotted(path), doc.line_of(path), error.message)]
    allowed = sorted(error.schema.get("properties", {}))
    instance = error.instance if isinstance(error.instance, dict) else {}
    problems = []
    for key in (k for k in instance if k not in allowed):
        key_path = (*path, key)
        alias = ALIASES.get(str(key).lower())
        guess = [alias] if alias in allowed else difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.5)
        message = f"unknown key '{key}'" + ("" if guess else f"; allowed: {', '.join(allowed)}")
        problems.append(ConfigProblem(dotted(key_path), doc.line_of(key_path), message, guess[0] if guess else None))
    return problems


def find_config(start: Path) -> Path:
    """``start`` itself when a file, else the first config name found in the folder."""
    if start.is_file():
        return start
    for name in CONFIG_NAMES:
        if (start / name).is_file():
            return start / name
    raise InputError(f"{start}: no {' / '.join(CONFIG_NAMES)} here", hint="`sftgate init DIR` creates one")
