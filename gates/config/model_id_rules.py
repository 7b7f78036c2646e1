"""The rule table of gate ``model-id`` (MID001-MID012)."""

from __future__ import annotations

from sftgate.gates.frame.core import Rule, Severity

GATE = "model-id"

INVALID_REPO_ID = Rule(
    "MID001", "invalid_repo_id", Severity.ERROR, GATE,
    "the model ID breaks the Hub's naming rules",
    "A Hub ID is `org/name`: letters, digits, `.`, `_`, `-`, at most 96 per segment, no `--` or `..`, "
    "no `.git` suffix, no leading or trailing `-` or `.`, no whitespace, at most one `/`. Anything else "
    "fails at load time with HFValidationError or 'is not a valid model identifier', after the job "
    "was scheduled.",
    "Use the suggestion when there is one (surrounding whitespace, quotes, a trailing `/` or `.git` "
    "are stripped); otherwise copy the ID from the model page. `sftgate fix-model-ids FILE --write` "
    "applies the safe fixes.",
    "model:\n  id: ' mistralai/Mistral-7B-Instruct-v0.3'   # -> mistralai/Mistral-7B-Instruct-v0.3",
)
MISSING_NAMESPACE = Rule(
    "MID002", "missing_namespace", Severity.WARNING, GATE,
    "a Hub ID without an organisation (`gpt2` instead of `openai-community/gpt2`)",
    "Legacy IDs without a namespace only load through Hub redirects, and a bare name like "
    "`Mistral-7B-Instruct-v0.3` does not load at all. A publish target without a namespace goes to "
    "whoever's token runs the job.",
    "Write the full `org/name`; the suggestion gives the canonical ID when it is known (legacy table, "
    "local HF cache) or a likely one (model family).",
    "model:\n  id: gpt2   # -> openai-community/gpt2",
)
DASH_SEPARATED_ID = Rule(
    "MID003", "dash_separated_id", Severity.ERROR, GATE,
    "`org-name` (or the cache folder `models--org--name`) where `org/name` was meant",
    "`mistralai-Mistral-7B-Instruct` passes huggingface_hub's validate_repo_id, so nothing catches it "
    "before the job dies at load time with 'is not a local folder and is not a valid model "
    "identifier'. The organisation is recognised from a table of well-known organisations, the local "
    "HF cache and the cache-folder form.",
    "Use the slash form in the suggestion; `sftgate fix-model-ids FILE --write` rewrites it when the "
    "organisation is certain.",
    '{"model": {"name": "mistralai-Mistral-7B-Instruct"}}   # -> mistralai/Mistral-7B-Instruct',
)
URL_NOT_ID = Rule(
    "MID004", "url_not_id", Severity.ERROR, GATE,
    "a Hub URL where a model ID was expected",
    "from_pretrained takes `org/name`, not `https://huggingface.co/org/name`; a URL is not a local "
    "folder either, so loading fails. A `/tree/REV` in the URL is a revision that belongs in its own key.",
    "Use the ID in the suggestion, and put the URL's revision (if any) in `model.revision`.",
    "model:\n  id: https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/tree/main   # -> Qwen/Qwen2.5-0.5B-Instruct",
)
LOCAL_PATH_MISSING = Rule(
    "MID005", "local_path_missing", Severity.ERROR, GATE,
    "a local model path (`./x`, `../x`, `/x`, `~/x`) that does not exist",
    "A path that does not exist is then tried as a Hub ID, which fails with a confusing "
    "HFValidationError or 'not a valid model identifier' instead of 'no such folder'.",
    "Fix the path (relative paths are tried from the config's folder and from the current folder), "
    "or build the model first. A path into the HF cache suggests the Hub ID it caches.",
    "model:\n  id: ./checkpoints/base   # no such folder",
)
UNPINNED_REVISION = Rule(
    "MID006", "unpinned_revision", Severity.ERROR, GATE,
    "release mode: the revision is a branch, a tag or missing instead of a 40-hex commit",
    "A branch moves: the model trained today and the one loaded tomorrow can differ, and a release "
    "must be reproducible. Only a full commit hash pins the weights.",
    "Set `model.revision` to the commit (`--online` suggests the commit the branch points to now; "
    "the model page's 'Files and versions' tab lists them).",
    "model:\n  id: Qwen/Qwen2.5-0.5B-Instruct\n  revision: main   # -> a 40-hex commit",
)
NOT_FOUND = Rule(
    "MID007", "not_found", Severity.ERROR, GATE,
    "online: the repo does not exist on the Hub (or is private to this token)",
    "The ID is well formed but names nothing the job can download; it would fail at load time.",
    "Check the spelling on the Hub; for a private repo set HF_TOKEN to a token that can read it.",
    "sftgate model-id mistralai/Mistral-7B-Instruct-v9 --online",
)
GATED = Rule(
    "MID008", "gated", Severity.ERROR, GATE,
    "online: the repo is gated (an error when this token has no access, a warning when it has)",
    "A gated repo (Llama, Gemma, ...) exists but downloads only for accounts that accepted its "
    "conditions; the training machine needs such a token too.",
    "Accept the conditions on the model page and set HF_TOKEN on every machine that loads it.",
    "sftgate model-id meta-llama/Llama-3.1-8B-Instruct --online",
)
NOT_A_MODEL_FOLDER = Rule(
    "MID009", "not_a_model_folder", Severity.ERROR, GATE,
    "a local path that exists but is not a model folder (no config.json; a file; an adapter)",
    "transformers needs config.json in a model folder (tokenizer files in a tokenizer folder, "
    "adapter_config.json in an adapter folder); without it loading fails after the job started. "
    "A PEFT adapter folder only loads through AutoPeftModel classes.",
    "Point at the folder that holds config.json (for an HF cache folder, use the Hub ID or a "
    "`snapshots/<commit>` folder).",
    "model:\n  id: ./checkpoints/run-1   # has only optimizer.pt",
)
INVALID_REVISION = Rule(
    "MID010", "invalid_revision", Severity.ERROR, GATE,
    "the revision is not a valid git ref or commit (whitespace, `..`, `~^:?*[\\`, ...)",
    "transformers fails with 'is not a valid git identifier (branch name, tag name or commit id)'.",
    "Use a branch, a tag or a commit hash; the suggestion strips surrounding whitespace.",
    "model:\n  revision: 'main '   # -> main",
)
REVISION_NOT_FOUND = Rule(
    "MID011", "revision_not_found", Severity.ERROR, GATE,
    "online: the revision does not exist in the repo",
    "A typo in a branch, a deleted tag or a commit of another repo fails at load time with 'is not "
    "a valid git identifier'.",
    "Pick a revision from the model page's 'Files and versions' tab.",
    "sftgate model-id Qwen/Qwen2.5-0.5B-Instruct --revision v9 --online",
)
ONLINE_CHECK_SKIPPED = Rule(
    "MID012", "online_check_skipped", Severity.WARNING, GATE,
    "--online was asked for, but the Hub could not be asked (HF_HUB_OFFLINE, no huggingface_hub, network)",
    "A skip is never a pass: existence, gated access and revisions were not verified. "
    "HF_HUB_OFFLINE=1 is respected (a warning); a network failure or a missing huggingface_hub is an error.",
    "Unset HF_HUB_OFFLINE, install huggingface_hub (`pip install 'sftgate[train]'`), or check the network.",
    "HF_HUB_OFFLINE=1 sftgate model-id Qwen/Qwen2.5-0.5B-Instruct --online",
)

RULES: tuple[Rule, ...] = (
    INVALID_REPO_ID, MISSING_NAMESPACE, DASH_SEPARATED_ID, URL_NOT_ID, LOCAL_PATH_MISSING,
    UNPINNED_REVISION, NOT_FOUND, GATED, NOT_A_MODEL_FOLDER, INVALID_REVISION, REVISION_NOT_FOUND,
    ONLINE_CHECK_SKIPPED,
)
