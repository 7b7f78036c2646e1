"""Peer trainer configs: axolotl, LLaMA-Factory, TRL (``trl sft --config``) and mistral-finetune job files.

:mod:`.tables` loads the key tables (data under ``gates/schemas/peer/``, generated from each
tool's documented options by ``scripts/build_peer_key_tables.py``), :mod:`.detect` recognises a
format from its keys, :mod:`.keys` validates the keys, :mod:`.fields` finds the model IDs,
:mod:`.jobs` reads what a job trains on (datasets, tokenizer, template, lengths, LoRA targets),
:mod:`.datasets` maps the tools' dataset formats onto sftgate's, and :mod:`.run` runs the gates
that exist on what the config names. The gate of its own is :mod:`.gate` (``peer-config``).
"""
