"""The demo's example, generated offline: strict-JSON extraction data and its ``sftgate.yaml``.

A sentence about a person in, one compact JSON object out (``{"name": ..., "age": ..., "city": ...,
"job": ...}``). The records come from the word lists in ``runners/demo/data/demo/``, seeded and
deterministic: train, eval and fixed cases (held-out people: no eval or case person, first and
last name together, is in train), raw text for the demo's base-training step, and the output
schema. :func:`config_text` writes the config that points at them.

::

    from sftgate.runners.demo.example_data import make_data, write_jsonl
    data = make_data(0, n_train=200)
    write_jsonl(Path("data/train.jsonl"), data.train)
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sftgate.gates.readers import atomic

SYSTEM = "Reply with JSON: name, age, city, job."
N_TRAIN, N_EVAL, N_CASES = 1600, 60, 40


# --------------------------------------------------------------------------- the data


def demo_file(name: str) -> str:
    return resources.files("sftgate.runners.demo").joinpath(f"data/demo/{name}").read_text("utf-8")


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
    age = rng.randint(20, 69)
    city = rng.choice(words["cities"])
    job = rng.choice(words["jobs"])
    sentence = rng.choice(words["sentences"]).format(first=first, last=last, age=age, city=city, job=job)
    return sentence, {"name": f"{first} {last}", "age": age, "city": city, "job": job}


def _answer(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False)  # {"name": "Ada Lovelace", "age": 36, ...}


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
    for i in range(2 * n_train):  # raw text for the base-training step: notes, prose answers, lone JSON
        sentence, value = _person(rng, words, *rng.choice(seen))
        if i % 4 == 3:
            prose = f"{value['name']} is {value['age']}, a {value['job']} in {value['city']}."
            pretrain.append(f"<|im_start|>user\n{sentence}<|im_end|>\n<|im_start|>assistant\n{prose}<|im_end|>\n")
        elif i % 4 == 2:
            pretrain.append(_answer(value))
        else:
            pretrain.append(f"{sentence} name={value['name']} age={value['age']} city={value['city']} job={value['job']}")
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


# --------------------------------------------------------------------------- the config


def config_text(*, model_id: str, tokenizer: str | None = None, collator: str | None = None,
                inference_template: str | None = None, lora_steps: int = 400) -> str:
    """The demo's ``sftgate.yaml`` (paths relative to it)."""
    lines = [
        "# sftgate demo: strict-JSON extraction with a tiny Mistral-architecture model, offline, on CPU.",
        "sftgate: 1",
        "model:",
        f"  id: {model_id}",
    ]
    if tokenizer:
        lines.append(f"  tokenizer: {tokenizer}")
    lines += [
        "data:",
        "  train: data/train.jsonl",
        "  eval: data/eval.jsonl",
        "  cases: data/cases.jsonl",
        "  output_schema: data/schema.json",
        "  format: messages",
        "prompt:",
        f"  system: {json.dumps(SYSTEM)}",
    ]
    if inference_template:
        lines.append(f"  inference_chat_template: {inference_template}")
    lines += [
        "lora:",
        "  r: 16",
        "  alpha: 32",
        "  dropout: 0.0",
        "  target_modules: all-linear",
        "train:",
        "  max_seq_len: 128",
        f"  max_steps: {lora_steps}",
        "  lr: 0.01",
        "  batch_size: 32",
        "  seed: 0",
        "  output_dir: run",
    ]
    if collator:
        lines.append(f"  collator: {collator}")
    lines += [
        "eval:",
        "  max_new_tokens: 48",
        "  min_pass_rate: 0.95",
        "  min_eos_rate: 0.95",
        "  batch_size: 20",
        "release:",
        "  dir: run/release",
        "",
    ]
    return "\n".join(lines)
