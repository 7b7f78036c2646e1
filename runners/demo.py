"""``sftgate demo``: the whole pipeline on a built-in example, offline, on CPU, in a few minutes.

The example is strict-JSON extraction: a sentence about a person in, one compact JSON object
out (``{"name": ..., "age": ..., "city": ..., "job": ...}``), validated against a JSON Schema.
Everything is made here, with no download:

1. synthetic data from the word lists in ``runners/data/demo/``: train, eval, fixed cases
   (held-out people: no name of eval or the cases is in train) and the output schema;
2. a tiny byte-level BPE tokenizer with a ChatML template (:mod:`runners.tiny_tokenizer`);
3. a tiny Mistral-architecture model with random weights (:mod:`runners.tiny_model`);
4. a short base-training step: LoRA alone cannot teach a *random* network a language, so the demo
   first trains the base fully on raw text (the sentences and key=value notes, no chat template,
   no JSON), the way a real base model arrives pre-trained. It says so in its output;
5. ``sftgate run`` on the generated ``sftgate.yaml``: config -> data -> tokenizer -> train (LoRA)
   -> adapter (strict JSON + EOS on the fixed cases) -> merge -> release;
6. a loss-curve PNG and a markdown report in the run folder.

``--break`` reproduces one real failure each, stopped by the gate that owns it before any training:

- ``model-id``: the config names ``mistralai-Mistral-7B-Instruct-v0.3`` (dashes for the slash);
- ``leak``: eval rows copied into train (``eval_leak_exact``);
- ``eos``: pad == eos and ``train.collator: mask_pad`` (``eos_masked``);
- ``template``: serving renders with another chat template (``template_mismatch``).

::

    sftgate demo
    sftgate demo --out /tmp/demo --format json
    sftgate demo --break leak
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gates import atomic
from gates.core import Stage
from gates.report import Report

BREAKS = ("model-id", "leak", "eos", "template")
SYSTEM = "Reply with JSON: name, age, city, job."
DASH_ID = "mistralai-Mistral-7B-Instruct-v0.3"
N_TRAIN, N_EVAL, N_CASES = 1600, 60, 40
# The owning gate of each --break case and the rule it must report.
BREAK_RULES = {
    "model-id": ("model-id", "dash_separated_id"),
    "leak": ("split-isolation", "eval_leak_exact"),
    "eos": ("eos", "eos_masked"),
    "template": ("prompt-alignment", "template_mismatch"),
}

Say = Callable[[str], Any]


# --------------------------------------------------------------------------- the data


def demo_file(name: str) -> str:
    return resources.files("runners").joinpath(f"data/demo/{name}").read_text("utf-8")


def vocab() -> dict[str, list[str]]:
    return json.loads(demo_file("vocab.json"))  # type: ignore[no-any-return]


@dataclass
class DemoData:
    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    cases: list[dict[str, Any]]
    pretrain: list[str] = field(default_factory=list)

    def corpus(self) -> list[str]:
        """Texts for the tokenizer: every message, note and answer (no eval/cases answers needed)."""
        out = [SYSTEM, *self.pretrain]
        for row in self.train:
            out.extend(m["content"] for m in row["messages"])
        for row in self.eval + self.cases:
            out.append(row["messages"][0]["content"])
        return out


def _person(rng: random.Random, words: dict[str, list[str]], first: str, last: str) -> tuple[str, dict[str, Any]]:
    age = rng.randint(18, 79)
    city = rng.choice(words["cities"])
    job = rng.choice(words["jobs"])
    sentence = rng.choice(words["sentences"]).format(first=first, last=last, age=age, city=city, job=job)
    return sentence, {"name": f"{first} {last}", "age": age, "city": city, "job": job}


def _answer(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def make_data(seed: int = 0, *, n_train: int = N_TRAIN, n_eval: int = N_EVAL, n_cases: int = N_CASES) -> DemoData:
    """Deterministic synthetic data: held-out (first, last) pairs for eval and the fixed cases."""
    rng = random.Random(seed)
    words = vocab()
    pairs = [(f, last) for f in words["first_names"] for last in words["last_names"]]
    rng.shuffle(pairs)
    held, seen = pairs[: n_eval + n_cases], pairs[n_eval + n_cases:]
    train, pretrain = [], []
    for _ in range(n_train):
        sentence, value = _person(rng, words, *rng.choice(seen))
        train.append({"messages": [{"role": "user", "content": sentence},
                                   {"role": "assistant", "content": _answer(value)}]})
    for _ in range(n_train):  # raw text for the base-training step: prose answers, and JSON on its own
        sentence, value = _person(rng, words, *rng.choice(seen))
        prose = f"{value['name']} is {value['age']}, a {value['job']} in {value['city']}."
        pretrain.append(f"<|im_start|>user\n{sentence}<|im_end|>\n<|im_start|>assistant\n{prose}<|im_end|>\n")
        _, other = _person(rng, words, *rng.choice(seen))
        pretrain.append(_answer(other))
    evals = []
    for first, last in held[:n_eval]:
        sentence, value = _person(rng, words, first, last)
        evals.append({"messages": [{"role": "user", "content": sentence},
                                   {"role": "assistant", "content": _answer(value)}]})
    cases = []
    for i, (first, last) in enumerate(held[n_eval:], start=1):
        sentence, value = _person(rng, words, first, last)
        cases.append({"id": f"case-{i:03d}", "messages": [{"role": "user", "content": sentence}], "expected": value})
    return DemoData(train, evals, cases, pretrain)


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    atomic.write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path
