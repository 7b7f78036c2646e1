"""What the Hugging Face Hub accepts in a model card's YAML metadata, checked field by field offline.

The card is parsed with huggingface_hub's own classes (``ModelCard``: the ``---`` front matter,
``ModelCardData``: its fields, ``model-index`` included); :func:`field_problems` then checks what
the Hub validates on upload: ``license`` is one of the Hub's license identifiers (``other`` needs
``license_name`` and ``license_link``), ``base_model`` and ``datasets`` are Hub repo IDs,
``pipeline_tag`` is a Hub task, ``base_model_relation`` one of its four values, list fields are lists
of strings. Tables as of the Hub documentation (docs/hub/repositories-licenses, the tasks of
huggingface.js).

Valid: ``license: apache-2.0``, ``base_model: mistralai/Mistral-7B-v0.3``, ``pipeline_tag: text-generation``.
Invalid: ``license: Apache 2.0`` (did you mean apache-2.0?), ``base_model: ./models/base``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sftgate.gates.config.hub_id_grammar import is_valid_repo_id


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


HUB_LICENSES = _words("""
apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0 bigcode-openrail-m
afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0
cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0
cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0
cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0
gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c ms-pl apple-ascl
apple-amlr mpl-2.0 odc-by odbl openmdw-1.0 openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl
lgpl-lr deepfloyd-if-license fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2 llama3.3
llama4 grok2-community gemma unknown other
""")

HUB_TASKS = _words("""
text-generation text2text-generation text-classification token-classification question-answering
table-question-answering zero-shot-classification translation summarization feature-extraction fill-mask
sentence-similarity text-ranking image-text-to-text visual-question-answering document-question-answering
any-to-any audio-text-to-text automatic-speech-recognition text-to-speech text-to-image image-to-text
image-classification object-detection image-segmentation reinforcement-learning robotics other
""")

BASE_MODEL_RELATIONS = ("adapter", "merge", "quantized", "finetune")
LIST_FIELDS = ("tags", "language", "metrics")


@dataclass(frozen=True)
class FieldProblem:
    """One metadata field the Hub would refuse or misread."""

    key: str
    message: str
    suggestion: str | None = None


def _strings(value: Any) -> list[str] | None:
    """``value`` as a list of strings (a string is one), or None when it is neither."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def license_problem(metadata: dict[str, Any]) -> FieldProblem | None:
    """A ``license`` that is not a Hub license identifier (a missing one is ``license_missing``)."""
    value = metadata.get("license")
    if value is None:
        return None
    if not isinstance(value, str) or value not in HUB_LICENSES:
        guess = difflib.get_close_matches(str(value).lower().replace(" ", "-"), sorted(HUB_LICENSES), n=1, cutoff=0.6)
        return FieldProblem("license", f"license {value!r} is not a Hub license identifier",
                            f"license: {guess[0]}" if guess else "license: other (with license_name and license_link)")
    if value == "other" and not (metadata.get("license_name") and metadata.get("license_link")):
        return FieldProblem("license", "license 'other' needs license_name and license_link",
                            "license_name: my-license and license_link: LICENSE")
    return None


def field_problems(metadata: dict[str, Any]) -> Iterator[FieldProblem]:
    """Every field of ``metadata`` the Hub would refuse (``license`` aside: :func:`license_problem`)."""
    for key in ("base_model", "datasets"):
        value = metadata.get(key)
        if value is None:
            continue
        ids = _strings(value)
        if ids is None:
            yield FieldProblem(key, f"{key} must be a Hub ID or a list of them, got {type(value).__name__}")
            continue
        for repo_id in ids:
            if not is_valid_repo_id(repo_id, require_namespace=key == "base_model"):
                yield FieldProblem(key, f"{key} {repo_id!r} is not a Hub repo ID (namespace/name)")
    tag = metadata.get("pipeline_tag")
    if tag is not None and (not isinstance(tag, str) or tag not in HUB_TASKS):
        guess = difflib.get_close_matches(str(tag), sorted(HUB_TASKS), n=1)
        yield FieldProblem("pipeline_tag", f"pipeline_tag {tag!r} is not a Hub task",
                           f"pipeline_tag: {guess[0] if guess else 'text-generation'}")
    relation = metadata.get("base_model_relation")
    if relation is not None and relation not in BASE_MODEL_RELATIONS:
        yield FieldProblem("base_model_relation", f"base_model_relation {relation!r} is not one of "
                           f"{', '.join(BASE_MODEL_RELATIONS)}")
    library = metadata.get("library_name")
    if library is not None and (not isinstance(library, str) or not library.strip()):
        yield FieldProblem("library_name", f"library_name must be a library name, got {library!r}",
                           "library_name: transformers")
    for key in LIST_FIELDS:
        value = metadata.get(key)
        if value is not None and _strings(value) is None:
            yield FieldProblem(key, f"{key} must be a string or a list of strings, got {type(value).__name__}")
