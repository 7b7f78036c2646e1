"""The starter project ``sftgate init`` writes: support-ticket triage answered in strict JSON.

Kept as Python data (not package files) so that it ships with the code, needs no package-data
entry, and its invariants are checked by the tests: every completion is compact JSON valid
against :data:`OUTPUT_SCHEMA`; every enum value occurs in the training completions; no eval row
or fixed case shares a prompt (or a 13-word n-gram) with the training data.
"""

from __future__ import annotations

import json
from typing import Any

SYSTEM_PROMPT = (
    "Classify the support ticket. Answer with one JSON object with the keys category, "
    "urgency (1-3) and needs_human, and nothing else."
)

OUTPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "support ticket triage",
    "type": "object",
    "properties": {
        "category": {"enum": ["billing", "bug", "account", "feature_request"]},
        "urgency": {"type": "integer", "minimum": 1, "maximum": 3},
        "needs_human": {"type": "boolean"},
    },
    "required": ["category", "urgency", "needs_human"],
    "additionalProperties": False,
}

# (ticket, category, urgency, needs_human)
TRAIN: tuple[tuple[str, str, int, bool], ...] = (
    ("I was charged twice for my March invoice.", "billing", 2, True),
    ("Can I get a receipt with our company VAT number on it?", "billing", 1, False),
    ("My card was declined but the payment still shows as pending.", "billing", 2, False),
    ("Please cancel the renewal, we were billed for a plan we downgraded.", "billing", 3, True),
    ("Where do I change the billing email address?", "billing", 1, False),
    ("The annual discount was not applied to our upgrade.", "billing", 2, True),
    ("Refund request: the order was placed by mistake ten minutes ago.", "billing", 2, True),
    ("Do you accept bank transfers for invoices over 5000 euros?", "billing", 1, False),
    ("The export button does nothing in Firefox.", "bug", 2, False),
    ("Since this morning the dashboard shows a blank page for all users.", "bug", 3, True),
    ("Uploading a PNG larger than 4 MB fails with error 500.", "bug", 2, False),
    ("The mobile app crashes when I open the settings tab.", "bug", 2, False),
    ("Search returns results from another workspace, that looks like a data leak.", "bug", 3, True),
    ("Dates in the weekly report are shifted by one day.", "bug", 1, False),
    ("Notifications arrive twice on Android.", "bug", 1, False),
    ("The API returns 401 for valid tokens since the last release.", "bug", 3, True),
    ("I forgot my password and the reset email never arrives.", "account", 2, False),
    ("Please add two seats for our new interns.", "account", 1, False),
    ("Someone logged into my account from a country I have never visited.", "account", 3, True),
    ("How do I transfer ownership of the workspace to my colleague?", "account", 1, False),
    ("Our admin left the company and nobody can manage users now.", "account", 3, True),
    ("Can I merge two accounts that use the same email?", "account", 2, True),
    ("Two-factor codes from my authenticator app are rejected.", "account", 2, False),
    ("Please delete my account and all my personal data.", "account", 2, True),
    ("It would be great to export reports as Excel files.", "feature_request", 1, False),
    ("Could you add a dark mode to the web app?", "feature_request", 1, False),
    ("We need single sign-on with Okta before we can roll out to the whole company.", "feature_request", 2, True),
    ("Please let us schedule reports to be emailed every Monday.", "feature_request", 1, False),
    ("An audit log of admin actions is required by our compliance team.", "feature_request", 2, True),
    ("Can the calendar view show public holidays?", "feature_request", 1, False),
    ("Allow custom fields on contacts, we track a customer tier.", "feature_request", 1, False),
    ("Our enterprise contract depends on a data residency option in the EU.", "feature_request", 3, True),
)

EVAL: tuple[tuple[str, str, int, bool], ...] = (
    ("We paid the invoice yesterday but the account still says overdue.", "billing", 2, True),
    ("Is there a student price?", "billing", 1, False),
    ("Charts do not render on Safari 17.", "bug", 2, False),
    ("Every login attempt times out for our whole team right now.", "bug", 3, True),
    ("How can I rename my username?", "account", 1, False),
    ("My colleague's access should be removed today, she left the company.", "account", 3, True),
    ("A keyboard shortcut to archive messages would save us time.", "feature_request", 1, False),
    ("Please support webhooks so we can sync tickets with our CRM.", "feature_request", 2, False),
)

# (id, ticket, category, urgency, needs_human)
CASES: tuple[tuple[str, str, str, int, bool], ...] = (
    ("billing-after-cancel", "I was billed after cancelling my subscription last month.", "billing", 2, True),
    ("bug-drafts-spin", "Users cannot save drafts, the save button spins forever.", "bug", 3, True),
    ("account-rename-company", "Please change the company name on our account.", "account", 1, False),
    ("account-reset-expired", "The password reset link says it has expired immediately.", "account", 2, False),
    ("feature-offline", "Could the mobile app work offline?", "feature_request", 1, False),
    ("billing-price-mismatch", "The invoice total does not match the price on your website.", "billing", 2, True),
)

CONFIG = f"""\
# sftgate config of a starter fine-tune: support-ticket triage answered in strict JSON.
# Paths are relative to this file. `sftgate check sftgate.yaml` runs every preflight gate
# (model ID, dataset schema, split isolation, prompt and EOS handling);
# `sftgate rules NAME` explains a rule.
sftgate: 1

model:
  id: Qwen/Qwen2.5-0.5B-Instruct       # a Hub ID (org/name) or a local model folder
  # revision: <40-hex commit>           # pin it before a release (see release below)

data:
  train: data/train.jsonl               # {{"prompt": ..., "completion": ...}} per line
  eval: data/eval.jsonl                 # held out: no prompt or 13-word n-gram shared with train
  cases: data/cases.jsonl               # fixed eval cases: {{"id", "prompt", "expected"}}
  output_schema: schema/output.schema.json   # every completion and generation must satisfy it
  format: prompt_completion

prompt:
  system: {json.dumps(SYSTEM_PROMPT)}

lora:
  r: 16
  alpha: 32
  dropout: 0.05
  target_modules: [q_proj, k_proj, v_proj, o_proj]

train:
  max_seq_len: 512
  epochs: 3
  lr: 2.0e-4
  batch_size: 8
  seed: 0

eval:
  max_new_tokens: 64
  min_pass_rate: 0.9

release:
  require_pinned_revision: false        # set true, and pin model.revision, before publishing
  repo_id: your-org/ticket-triage       # the Hub repo `sftgate release` publishes to
"""


def completion(category: str, urgency: int, needs_human: bool) -> str:
    """The compact JSON answer the model is trained to produce."""
    return json.dumps({"category": category, "urgency": urgency, "needs_human": needs_human},
                      separators=(",", ":"))


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def files() -> dict[str, str]:
    """Relative path -> text of every file in the starter project."""
    return {
        "sftgate.yaml": CONFIG,
        "data/train.jsonl": _jsonl([{"prompt": t, "completion": completion(c, u, h)} for t, c, u, h in TRAIN]),
        "data/eval.jsonl": _jsonl([{"prompt": t, "completion": completion(c, u, h)} for t, c, u, h in EVAL]),
        "data/cases.jsonl": _jsonl([
            {"id": i, "prompt": t, "expected": {"category": c, "urgency": u, "needs_human": h}}
            for i, t, c, u, h in CASES
        ]),
        "schema/output.schema.json": json.dumps(OUTPUT_SCHEMA, indent=2) + "\n",
    }
