"""Build a tiny tokenizer offline with the ``tokenizers`` library: for the demo and test fixtures.

A byte-level BPE (every string encodes, no unknown tokens) trained on a small built-in corpus
plus ``corpus``, with the control tokens of three chat formats as special tokens, and a chat
template written in this project. The folder holds ``tokenizer.json``,
``tokenizer_config.json``, ``chat_template.jinja`` and a ``generation_config.json`` whose
``eos_token_id`` lists EOS and the template's end-of-turn token. It loads with
:func:`sftgate.gates.readers.tokenizer_io.load_tokenizer` (``AutoTokenizer``, no network).

::

    from sftgate.runners.demo.tiny_tokenizer import build_tiny_tokenizer
    build_tiny_tokenizer("tiny-tok", corpus=["Extract the name: Ada"], template="chatml")
    build_tiny_tokenizer("tiny-tok-bug", template="mistral", pad_equals_eos=True)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from sftgate.gates.readers import atomic

CHATML = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

MISTRAL = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}"
    "{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{%- set ns = namespace(last_user=-1) %}"
    "{%- for message in loop_messages %}"
    "{%- if message['role'] == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}"
    "{%- endfor %}"
    "{{- bos_token }}"
    "{%- for message in loop_messages %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if loop.index0 == ns.last_user and system_message is defined %}"
    "{{- '[INST] ' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}"
    "{%- else %}{{- '[INST] ' + message['content'] + '[/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] + eos_token }}"
    "{%- endif %}"
    "{%- endfor %}"
)

LLAMA3 = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

# template name -> (Jinja text, bos, eos, end-of-turn token)
TEMPLATES: dict[str, tuple[str, str, str, str]] = {
    "chatml": (CHATML, "<s>", "</s>", "<|im_end|>"),
    "mistral": (MISTRAL, "<s>", "</s>", "</s>"),
    "llama3": (LLAMA3, "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"),
}

SPECIAL_TOKENS = (
    "<pad>", "<s>", "</s>", "<unk>",
    "<|im_start|>", "<|im_end|>",
    "[INST]", "[/INST]",
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
)

BASE_CORPUS = (
    "You are a helpful assistant. Answer the question in one short sentence.",
    "What is the capital of France? The capital of France is Paris.",
    "Extract the name and the age as JSON: Ada Lovelace was 36 years old.",
    '{"name": "Ada Lovelace", "age": 36, "tags": ["math", "poetry"], "ok": true, "score": 0.5}',
    "Summarize the text. The quick brown fox jumps over the lazy dog.",
    "Question: how many days are in a week? Answer: seven days, 0 1 2 3 4 5 6 7 8 9.",
    "Translate to French: good morning. Bonjour. Merci beaucoup, à bientôt!",
    "user assistant system: the model must stop after the answer and never repeat itself.",
)


def build_tiny_tokenizer(
    out_dir: str | os.PathLike[str],
    *,
    corpus: Iterable[str] = (),
    template: str = "chatml",
    pad_equals_eos: bool = False,
    vocab_size: int = 600,
) -> Path:
    """Train and save a tiny tokenizer folder; return its path.

    ``template`` is ``chatml``, ``mistral``, ``llama3`` or Jinja text (then the ChatML special
    tokens are used). ``pad_equals_eos=True`` sets the pad token to EOS, the setting that, with
    a collator masking pad labels, masks every EOS (rule ``eos_masked``).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if template in TEMPLATES:
        jinja, bos, eos, eot = TEMPLATES[template]
    elif "{{" in template or "{%" in template:
        jinja, bos, eos, eot = template, "<s>", "</s>", "<|im_end|>"
    else:
        raise ValueError(f"unknown template {template!r}: use one of {', '.join(TEMPLATES)} or Jinja text")

    texts = [*BASE_CORPUS, *corpus]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=eos,
        unk_token="<unk>",
        pad_token=eos if pad_equals_eos else "<pad>",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = jinja

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    eos_ids = list(dict.fromkeys([tokenizer.convert_tokens_to_ids(eos), tokenizer.convert_tokens_to_ids(eot)]))
    generation = {
        "bos_token_id": tokenizer.convert_tokens_to_ids(bos),
        "eos_token_id": eos_ids if len(eos_ids) > 1 else eos_ids[0],
        "pad_token_id": tokenizer.pad_token_id,
    }
    with tempfile.TemporaryDirectory(prefix=".tiny-tokenizer-", dir=out) as tmp:
        tokenizer.save_pretrained(tmp)
        atomic.write_text(Path(tmp) / "chat_template.jinja", jinja)
        for child in Path(tmp).iterdir():  # one atomic rename per file: readers never see half a file
            if child.is_file():
                os.replace(child, out / child.name)
            else:
                shutil.rmtree(child)
    atomic.write_text(out / "generation_config.json", json.dumps(generation, indent=2) + "\n")
    return out
