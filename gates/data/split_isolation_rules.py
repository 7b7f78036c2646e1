"""The rule table of the ``split-isolation`` gate (``LEAK001``...) and its leak kinds, strongest first.

:mod:`sftgate.gates.data.split_isolation` is the gate; findings are built from :data:`R` by name.
"""

from __future__ import annotations

from sftgate.gates.frame.core import Rule, rule_maker

GATE = "split-isolation"

# Leak kinds, strongest first; the value is the rank kept per eval record (lower wins).
EXACT, NORMALIZED, PROMPT, NGRAM = 1, 2, 3, 4
KIND_RULE = {EXACT: "eval_leak_exact", NORMALIZED: "eval_leak_normalized", PROMPT: "eval_leak_prompt",
             NGRAM: "eval_leak_ngram"}


_rule = rule_maker(GATE)


_FIX = "Remove the eval record from train (or from eval), then re-split by a group key so near-copies stay together."
RULES: tuple[Rule, ...] = (
    _rule("LEAK001", "eval_leak_exact", "an eval record is in train, exactly",
          "The eval score then measures memory, not generalisation: the model has seen the answer.", _FIX,
          'train.jsonl:12 and eval.jsonl:3 are both {"prompt": "2+2?", "completion": "4"}'),
    _rule("LEAK002", "eval_leak_normalized", "an eval record is in train after normalisation",
          "Case, punctuation, spacing or Unicode forms differ, the example does not: a copy that exact "
          "hashes miss.", _FIX, '"What is 2+2?" / "what is 2 + 2" with the same answer'),
    _rule("LEAK003", "eval_leak_prompt", "an eval prompt is in train with a different completion",
          "The model saw the question in training; its eval answer is not a fresh generalisation "
          "(and the two labels may disagree).", _FIX),
    _rule("LEAK004", "eval_leak_ngram", "an eval record shares a long word n-gram with a train record",
          "A shared 13-word sequence means shared source text (the same article, the same long question): "
          "the decontamination standard of GPT-3 and PaLM.",
          "Drop or rewrite the overlapping records; split by document (--group-key) so one source "
          "never lands in both splits; raise --ngram only with a reason."),
    _rule("LEAK005", "group_leak", "a group value (e.g. a source document id) is in both splits",
          "Records of one group are near-copies; a split that cuts groups leaks them.",
          "Split by the group key: every group entirely in train or entirely in eval."),
    _rule("LEAK006", "cases_leak", "a fixed eval case's prompt is in the training data",
          "The release gate's fixed cases then test recall of training examples.",
          "Remove the case's prompt from train, or replace the case."),
)
R = {rule.name: rule for rule in RULES}
