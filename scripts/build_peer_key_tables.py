"""Build the key tables of peer trainer configs (``gates/schemas/peer/<tool>.keys.json``) as data.

Each table lists every option a tool documents for its job config, with its JSON type, from
that tool's own config reference: the pydantic models and dataclasses in its source (read as
text with :mod:`ast`, never imported, never copied), and for TRL and the transformers
``TrainingArguments`` the installed dataclasses (``dataclasses.fields``). The table names the
tool version and commit it came from; sftgate ships the tables, not this script's inputs.

Usage (the mirrors are bare git repositories; any clone works)::

    python scripts/build_peer_key_tables.py \\
        --axolotl /path/to/axolotl.git --llamafactory /path/to/LLaMA-Factory.git \\
        --mistral-finetune /path/to/mistral-finetune.git [--out gates/schemas/peer]

Re-run it when a tool releases; the tests read the tables, never the tools.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "gates" / "schemas" / "peer"

SCALARS = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "dict": "object",
           "Dict": "object", "list": "array", "List": "array", "tuple": "array", "Tuple": "array", "set": "array",
           "Path": "string", "PositiveInt": "integer", "NonNegativeInt": "integer", "PositiveFloat": "number",
           "NonNegativeFloat": "number", "StrictStr": "string", "StrictInt": "integer", "StrictBool": "boolean",
           "None": "null", "NoneType": "null"}


# --------------------------------------------------------------------------- reading source as text


def git_show(repo: Path, path: str) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), "show", f"HEAD:{path}"], check=True,
                          capture_output=True, text=True).stdout


def git_ls(repo: Path, under: str) -> list[str]:
    out = subprocess.run(["git", "--git-dir", str(repo), "ls-tree", "-r", "--name-only", "HEAD", under],
                         check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.endswith(".py")]


def git_version(repo: Path) -> str:
    def run(*args: str) -> str:
        return subprocess.run(["git", "--git-dir", str(repo), *args], capture_output=True, text=True).stdout.strip()

    return f"{run('describe', '--tags', '--always')} ({run('rev-parse', 'HEAD')[:12]})"


@dataclasses.dataclass
class ClassInfo:
    name: str
    bases: list[str]
    fields: dict[str, tuple[ast.expr, str | None]]  # name -> (annotation, alias)
    enum_values: list[str]
    enum_complete: bool = True  # every member is a string constant (else any string may be valid)
    coerced: frozenset[str] = frozenset()  # fields a mode="before" validator converts first


def parse_classes(source: str) -> dict[str, ClassInfo]:
    """Every class of a module: bases, annotated fields (with pydantic aliases) and enum values."""
    out: dict[str, ClassInfo] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases]
        fields: dict[str, tuple[ast.expr, str | None]] = {}
        enum_values: list[str] = []
        complete = True
        coerced: set[str] = set()
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                coerced.update(_before_validated(stmt))
                continue
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                name = stmt.target.id
                if name.startswith("_") or name == "model_config" or _is_classvar(stmt.annotation):
                    continue
                if _init_false(stmt.value):
                    continue
                fields[name] = (stmt.annotation, _alias(stmt.value))
            elif isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
                if isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
                    enum_values.append(stmt.value.value)
                else:
                    complete = False
        out[node.name] = ClassInfo(node.name, bases, fields, enum_values, complete, frozenset(coerced))
    return out


def _before_validated(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The fields a ``@field_validator(..., mode="before")`` converts before type checking."""
    out: set[str] = set()
    for deco in func.decorator_list:
        if (isinstance(deco, ast.Call) and getattr(deco.func, "id", getattr(deco.func, "attr", "")) == "field_validator"
                and _call_keyword(deco, "mode") in ("before", "wrap", "plain")):
            out.update(a.value for a in deco.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return out


def _is_classvar(annotation: ast.expr) -> bool:
    return "ClassVar" in ast.unparse(annotation)


def _call_keyword(value: ast.expr | None, name: str) -> Any:
    if isinstance(value, ast.Call):
        for kw in value.keywords:
            if kw.arg == name and isinstance(kw.value, ast.Constant):
                return kw.value.value
    return None


def _alias(value: ast.expr | None) -> str | None:
    alias = _call_keyword(value, "alias")
    return alias if isinstance(alias, str) else None


def _init_false(value: ast.expr | None) -> bool:
    return _call_keyword(value, "init") is False


class Resolver:
    """Turns annotations into JSON types, and nested models into sections."""

    def __init__(self, classes: dict[str, ClassInfo], model_bases: set[str]) -> None:
        self.classes = classes
        self.model_bases = model_bases
        self.sections: dict[str, dict[str, Any]] = {}

    def is_model(self, name: str) -> bool:
        info = self.classes.get(name)
        if info is None:
            return False
        return any(b in self.model_bases or self.is_model(b) for b in info.bases)

    def is_enum(self, name: str) -> bool:
        info = self.classes.get(name)
        return info is not None and any("Enum" in b for b in info.bases)

    def coerced(self, name: str) -> set[str]:
        info = self.classes[name]
        out = set(info.coerced)
        for base in info.bases:
            if base in self.classes:
                out |= self.coerced(base)
        return out

    def all_fields(self, name: str) -> dict[str, tuple[ast.expr, str | None]]:
        info = self.classes[name]
        merged: dict[str, tuple[ast.expr, str | None]] = {}
        for base in reversed(info.bases):
            if base in self.classes:
                merged.update(self.all_fields(base))
        merged.update(info.fields)
        return merged

    def table(self, name: str) -> dict[str, Any]:
        keys: dict[str, Any] = {}
        coerced = self.coerced(name)
        for key, (annotation, alias) in sorted(self.all_fields(name).items()):
            spec = self.spec(annotation)
            if key in coerced:  # a validator converts the value first: any type may be right
                spec = {"type": ["any"], "coerced": True, **{k: v for k, v in spec.items() if k in ("section", "items")}}
            keys[key] = spec
            if alias:
                keys[alias] = {**spec, "alias_of": key}
        return keys

    def spec(self, annotation: ast.expr) -> dict[str, Any]:
        types_: set[str] = set()
        enum: list[Any] = []
        sections: list[str] = []
        self._walk(annotation, types_, enum, sections)
        open_string = "string" in types_
        types_.discard("string")
        if enum:
            types_.update(_json_type_of(v) for v in enum)
        if open_string:
            types_.add("string")
        spec: dict[str, Any] = {"type": sorted(types_) if "any" not in types_ else ["any"]}
        if enum and not open_string and "any" not in types_:
            spec["enum"] = enum
        if sections:
            for section in sections:
                if section not in self.sections:
                    self.sections[section] = {}
                    self.sections[section] = self.table(section)
            spec["section" if "array" not in types_ else "items"] = sections[0] if len(sections) == 1 else sections
        return spec

    def _walk(self, node: ast.expr, types_: set[str], enum: list[Any], sections: list[str]) -> None:
        if isinstance(node, ast.Constant):
            if node.value is None:
                types_.add("null")
            elif isinstance(node.value, str):
                try:
                    self._walk(ast.parse(node.value, mode="eval").body, types_, enum, sections)
                except SyntaxError:
                    types_.add("any")
            return
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            self._walk(node.left, types_, enum, sections)
            self._walk(node.right, types_, enum, sections)
            return
        if isinstance(node, ast.Subscript):
            head = node.value.id if isinstance(node.value, ast.Name) else getattr(node.value, "attr", "")
            args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if head in ("Optional",):
                types_.add("null")
                self._walk(args[0], types_, enum, sections)
            elif head == "Union":
                for arg in args:
                    self._walk(arg, types_, enum, sections)
            elif head == "Annotated":
                pattern = _string_pattern(args)
                if pattern is not None:
                    enum.append({"pattern": pattern})
                else:
                    self._walk(args[0], types_, enum, sections)
            elif head == "Literal":
                for arg in args:
                    if isinstance(arg, ast.Constant):
                        enum.append(arg.value)
            elif head in ("list", "List", "tuple", "Tuple", "set", "Sequence"):
                types_.add("array")
                item_types: set[str] = set()
                for arg in args:
                    self._walk(arg, item_types, [], sections)
            elif head in ("dict", "Dict", "Mapping"):
                types_.add("object")
            else:
                types_.add("any")
            return
        name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
        if name in SCALARS:
            types_.add(SCALARS[name])
        elif self.is_enum(name):
            if self.classes[name].enum_complete:
                enum.extend(self.classes[name].enum_values)
            else:
                types_.add("string")
        elif self.is_model(name):
            types_.add("object")
            sections.append(name)
        else:
            types_.add("any")


def _string_pattern(args: list[ast.expr]) -> str | None:
    """``Annotated[str, StringConstraints(pattern=P)]``: the pattern, else None."""
    if not (isinstance(args[0], ast.Name) and args[0].id == "str"):
        return None
    for extra in args[1:]:
        pattern = _call_keyword(extra, "pattern")
        if isinstance(pattern, str):
            return pattern
    return None


def _json_type_of(value: Any) -> str:
    from sftgate.gates.adapter.json_problem import json_type

    return "string" if isinstance(value, dict) else json_type(value)  # a dict is a pattern for strings


# --------------------------------------------------------------------------- runtime dataclasses


def runtime_spec(tp: Any) -> dict[str, Any]:
    types_: set[str] = set()
    enum: list[Any] = []
    _runtime_walk(tp, types_, enum)
    open_string = "string" in types_
    types_.update(_json_type_of(v) for v in enum)
    spec: dict[str, Any] = {"type": sorted(types_) if "any" not in types_ else ["any"]}
    if enum and not open_string and "any" not in types_:
        spec["enum"] = enum
    return spec


def _runtime_walk(tp: Any, types_: set[str], enum: list[Any]) -> None:
    import enum as enum_mod

    origin = typing.get_origin(tp)
    if tp is type(None) or tp is None:
        types_.add("null")
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            _runtime_walk(arg, types_, enum)
    elif origin is typing.Literal:
        enum.extend(typing.get_args(tp))
    elif origin in (list, tuple, set) or tp in (list, tuple, set):
        types_.add("array")
    elif origin is dict or tp is dict:
        types_.add("object")
    elif isinstance(tp, type) and issubclass(tp, enum_mod.Enum):
        enum.extend(m.value for m in tp)
    elif tp is bool:
        types_.add("boolean")
    elif tp is int:
        types_.add("integer")
    elif tp is float:
        types_.add("number")
    elif tp is str:
        types_.add("string")
    elif dataclasses.is_dataclass(tp):
        types_.add("object")
    else:
        types_.add("any")


def dataclass_table(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: runtime_spec(hints.get(f.name, f.type)) for f in dataclasses.fields(cls)
            if f.init and not f.name.startswith("_")}


# --------------------------------------------------------------------------- the tools


_NOT_KEYS = frozenset({"get", "keys", "items", "values", "update", "setdefault", "pop", "copy", "to_dict", "__dict__"})


def cfg_reads(repo: Path) -> set[str]:
    """The option names axolotl's code reads from its config (``cfg.x``, ``cfg.get("x")``, ``cfg["x"]``):
    pydantic keeps keys its models do not declare, and the code uses some of them."""
    names: set[str] = set()
    for path in git_ls(repo, "src/axolotl"):
        try:
            tree = ast.parse(git_show(repo, path))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            target = None
            if isinstance(node, ast.Attribute):
                target, name = node.value, node.attr
            elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                target, name = node.value, node.slice.value
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                  and node.args and isinstance(node.args[0], ast.Constant)):
                target, name = node.func.value, node.args[0].value
            else:
                continue
            is_cfg = (isinstance(target, ast.Name) and target.id == "cfg") or (
                isinstance(target, ast.Attribute) and target.attr == "cfg")
            if is_cfg and isinstance(name, str) and name.isidentifier() and name not in _NOT_KEYS:
                names.add(name)
    return names


def build_axolotl(repo: Path) -> dict[str, Any]:
    classes: dict[str, ClassInfo] = {}
    plugin_of: dict[str, str] = {}
    for path in git_ls(repo, "src/axolotl/utils/schemas"):
        classes.update(parse_classes(git_show(repo, path)))
    plugin_classes: dict[str, list[str]] = {}
    for path in git_ls(repo, "src/axolotl/integrations"):
        if not path.endswith("/args.py"):
            continue
        found = parse_classes(git_show(repo, path))
        classes.update({k: v for k, v in found.items() if k not in classes})
        plugin = path.split("/")[3]
        plugin_classes[plugin] = [name for name, info in found.items() if "BaseModel" in info.bases or info.fields]
        for name in found:
            plugin_of[name] = plugin
    resolver = Resolver(classes, {"BaseModel"})
    keys = resolver.table("AxolotlInputConfig")
    for plugin, names in sorted(plugin_classes.items()):
        for name in names:
            for key, spec in resolver.table(name).items():
                keys.setdefault(key, {**spec, "plugin": plugin})
    for key in sorted(cfg_reads(repo) - set(keys)):
        keys[key] = {"type": ["any"], "from": "read by axolotl's code (not in its schema)"}
    deprecated = set(resolver.all_fields("DeprecatedParameters"))
    for key in deprecated & set(keys):
        keys[key]["deprecated"] = True
    dataset_classes = ["SFTDataset", "DPODataset", "KTODataset", "StepwiseSupervisedDataset", "PretrainingDataset",
                       "SyntheticDataset"]
    dataset_keys: dict[str, Any] = {}
    for name in dataset_classes:
        if name in classes:
            for key, spec in resolver.table(name).items():
                dataset_keys.setdefault(key, spec)
    sections = dict(resolver.sections)
    sections["dataset"] = dataset_keys
    for key in ("datasets", "test_datasets", "pretraining_dataset"):
        if key in keys:
            keys[key] = {"type": keys[key]["type"], "items": "dataset"}
    return {
        "tool": "axolotl",
        "version": git_version(repo),
        "source": "https://github.com/axolotl-ai-cloud/axolotl src/axolotl/utils/schemas/ (pydantic "
                  "AxolotlInputConfig and its mixins; datasets: SFTDataset, DPODataset, ...) and "
                  "src/axolotl/integrations/*/args.py (plugin options)",
        "keys": keys,
        "sections": sections,
    }


def training_arguments(sources: dict[str, Path]) -> dict[str, Any]:
    """TrainingArguments + Seq2SeqTrainingArguments of the installed transformers and of each
    ``version -> folder`` source (a wheel's transformers/ folder, read as text); a key that only
    some versions have lists them in ``transformers``."""
    import transformers

    installed = {k: v for k, v in dataclass_table(transformers.Seq2SeqTrainingArguments).items()}
    by_version: dict[str, dict[str, Any]] = {transformers.__version__: installed}
    for version, folder in sources.items():
        classes: dict[str, ClassInfo] = {}
        for name in ("training_args.py", "training_args_seq2seq.py"):
            classes.update(parse_classes((folder / name).read_text("utf-8")))
        resolver = Resolver(classes, set())
        by_version[version] = resolver.table("Seq2SeqTrainingArguments")
    keys: dict[str, Any] = {}
    for version, table in by_version.items():
        for key, spec in table.items():
            keys.setdefault(key, {**spec, "from": "transformers TrainingArguments", "transformers": []})
            keys[key]["transformers"].append(version)
    for spec in keys.values():
        if len(spec["transformers"]) == len(by_version):
            del spec["transformers"]
    return keys


def build_llamafactory(repo: Path, sources: dict[str, Path]) -> dict[str, Any]:
    import transformers

    classes: dict[str, ClassInfo] = parse_classes(git_show(repo, "src/llamafactory/extras/constants.py"))
    for name in ("model_args", "data_args", "finetuning_args", "generating_args", "training_args",
                 "megatron_bridge_args", "parser"):
        classes.update(parse_classes(git_show(repo, f"src/llamafactory/hparams/{name}.py")))
    resolver = Resolver(classes, set())
    keys: dict[str, Any] = {}
    for name in ("ModelArguments", "DataArguments", "FinetuningArguments", "GeneratingArguments", "TrainingArguments",
                 "MegatronBridgeArguments", "_KTransformersRuntimeArguments"):
        keys.update(resolver.table(name))
    for key, spec in training_arguments(sources).items():
        keys.setdefault(key, spec)
    versions = ", ".join([transformers.__version__, *sources])
    return {
        "tool": "llamafactory",
        "version": f"{git_version(repo)}; transformers {versions}",
        "source": "https://github.com/hiyouga/LLaMA-Factory src/llamafactory/hparams/ (ModelArguments, "
                  "DataArguments, FinetuningArguments, GeneratingArguments, TrainingArguments; the train parser's "
                  "dataclasses) and transformers.Seq2SeqTrainingArguments",
        "keys": keys,
        "sections": {},
    }


def build_mistral_finetune(repo: Path) -> dict[str, Any]:
    classes: dict[str, ClassInfo] = {}
    for path in ("finetune/args.py", "finetune/data/args.py", "model/args.py"):
        classes.update(parse_classes(git_show(repo, path)))
    resolver = Resolver(classes, {"Serializable"})
    keys = resolver.table("TrainArgs")
    return {
        "tool": "mistral-finetune",
        "version": git_version(repo),
        "source": "https://github.com/mistralai/mistral-finetune finetune/args.py (TrainArgs), finetune/data/args.py, "
                  "model/args.py (LoraArgs)",
        "keys": keys,
        "sections": resolver.sections,
    }


def build_trl(sources: dict[str, Path]) -> dict[str, Any]:
    import transformers
    import trl
    from trl import DatasetMixtureConfig, ModelConfig, ScriptArguments, SFTConfig
    from trl.scripts.utils import DatasetConfig

    keys: dict[str, Any] = {}
    for cls in (ScriptArguments, SFTConfig, ModelConfig, DatasetMixtureConfig):
        for key, spec in dataclass_table(cls).items():
            keys.setdefault(key, {**spec, "from": cls.__name__})
    for key, spec in training_arguments(sources).items():  # SFTConfig under the other supported transformers
        keys.setdefault(key, spec)
    keys["env"] = {"type": ["object"], "from": "TrlParser"}
    keys["datasets"] = {"type": ["array"], "items": "dataset", "from": "DatasetMixtureConfig"}
    return {
        "tool": "trl",
        "version": f"trl {trl.__version__}; transformers {', '.join([transformers.__version__, *sources])}",
        "source": "trl sft --config: TrlParser over ScriptArguments, SFTConfig (with transformers "
                  "TrainingArguments), ModelConfig and DatasetMixtureConfig (introspected dataclasses)",
        "keys": keys,
        "sections": {"dataset": dataclass_table(DatasetConfig)},
    }


def write(table: dict[str, Any], out: Path) -> Path:
    table = {**table, "generated_by": "scripts/build_peer_key_tables.py"}
    path = out / f"{table['tool']}.keys.json"
    path.write_text(json.dumps(table, indent=1, sort_keys=False, ensure_ascii=False) + "\n", "utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--axolotl", type=Path)
    parser.add_argument("--llamafactory", type=Path)
    parser.add_argument("--mistral-finetune", type=Path)
    parser.add_argument("--no-trl", action="store_true", help="do not rebuild the TRL table")
    parser.add_argument("--transformers-src", action="append", default=[], metavar="VERSION=DIR",
                        help="another supported transformers' source folder (DIR/training_args.py), e.g. from "
                        "`pip download --no-deps transformers==4.56.2` unzipped; repeatable")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sources = {v: Path(d) for v, _, d in (item.partition("=") for item in args.transformers_src)}
    tables = []
    if args.axolotl:
        tables.append(build_axolotl(args.axolotl))
    if args.llamafactory:
        tables.append(build_llamafactory(args.llamafactory, sources))
    if args.mistral_finetune:
        tables.append(build_mistral_finetune(args.mistral_finetune))
    if not args.no_trl:
        tables.append(build_trl(sources))
    for table in tables:
        path = write(table, args.out)
        print(f"{path}: {len(table['keys'])} keys ({table['version']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
