"""Well-known Hub organisations and canonical IDs, for suggestions that need no network.

Three tables:

- :data:`KNOWN_ORGS`: organisations that publish open-weight models, in their exact case. They
  split a dash-separated ID (``mistralai-Mistral-7B-Instruct``) at the right dash, even when the
  organisation itself has a dash (``deepseek-ai-DeepSeek-R1``, ``01-ai-Yi-34B``).
- :data:`CANONICAL_IDS`: legacy single-segment IDs and where the Hub moved them
  (``gpt2`` -> ``openai-community/gpt2``).
- :data:`FAMILY_PREFIXES`: model-family name prefixes and the organisation that usually
  publishes them (``Mistral-`` -> ``mistralai``), a low-confidence guess for a bare name.

Organisations whose model names start with the organisation's own name (``albert``, ``xlnet``,
``distilbert``) are deliberately not in :data:`KNOWN_ORGS`: ``albert-xxlarge-v2`` is a legacy
name, not ``albert/xxlarge-v2``. Their legacy names live in :data:`CANONICAL_IDS`.
"""

from __future__ import annotations

KNOWN_ORGS: tuple[str, ...] = (
    "01-ai", "abacusai", "ai21labs", "aisingapore", "Alibaba-NLP", "allenai", "amazon", "answerdotai",
    "apple", "arcee-ai", "BAAI", "baichuan-inc", "baidu", "bigcode", "bigscience", "ByteDance-Seed",
    "cerebras", "codellama", "cognitivecomputations", "CohereForAI", "CohereLabs", "databricks",
    "deepseek-ai", "EleutherAI", "facebook", "FacebookAI", "google", "google-bert", "google-t5",
    "h2oai", "HuggingFaceH4", "HuggingFaceM4", "HuggingFaceTB", "huggyllama", "ibm-granite",
    "ibm-research", "intfloat", "internlm", "jinaai", "LGAI-EXAONE", "LiquidAI", "llava-hf", "lmsys",
    "meta-llama", "microsoft", "MiniMaxAI", "mistralai", "mixedbread-ai", "mlx-community", "moonshotai",
    "mosaicml", "Nexusflow", "nomic-ai", "NousResearch", "nvidia", "openai", "openai-community",
    "openbmb", "openchat", "OpenGVLab", "openlm-research", "PrimeIntellect", "princeton-nlp", "Qwen",
    "Salesforce", "sentence-transformers", "ServiceNow-AI", "Skywork", "Snowflake", "stabilityai",
    "stanford-crfm", "state-spaces", "swiss-ai", "teknium", "tencent", "THUDM", "tiiuae",
    "TinyLlama", "togethercomputer", "unsloth", "upstage", "WizardLMTeam", "xai-org", "zai-org",
)

# Legacy single-segment IDs moved under an organisation in 2024; the Hub still redirects them,
# but the canonical form is what a pinned, reproducible config should name.
CANONICAL_IDS: dict[str, str] = {
    **{name: f"openai-community/{name}" for name in ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "openai-gpt")},
    **{name: f"distilbert/{name}" for name in (
        "distilgpt2", "distilroberta-base", "distilbert-base-uncased", "distilbert-base-cased",
        "distilbert-base-multilingual-cased", "distilbert-base-uncased-distilled-squad",
        "distilbert-base-cased-distilled-squad", "distilbert-base-uncased-finetuned-sst-2-english",
        "distilbert-base-german-cased",
    )},
    **{name: f"google-bert/{name}" for name in (
        "bert-base-uncased", "bert-base-cased", "bert-large-uncased", "bert-large-cased",
        "bert-base-multilingual-uncased", "bert-base-multilingual-cased", "bert-base-chinese",
        "bert-base-german-cased", "bert-large-uncased-whole-word-masking",
        "bert-large-cased-whole-word-masking",
    )},
    **{name: f"FacebookAI/{name}" for name in (
        "roberta-base", "roberta-large", "roberta-large-mnli", "xlm-roberta-base", "xlm-roberta-large",
    )},
    **{name: f"google-t5/{name}" for name in ("t5-small", "t5-base", "t5-large", "t5-3b", "t5-11b")},
    **{name: f"albert/{name}" for name in (
        "albert-base-v1", "albert-large-v1", "albert-xlarge-v1", "albert-xxlarge-v1",
        "albert-base-v2", "albert-large-v2", "albert-xlarge-v2", "albert-xxlarge-v2",
    )},
    **{name: f"xlnet/{name}" for name in ("xlnet-base-cased", "xlnet-large-cased")},
    "ctrl": "Salesforce/ctrl",
    "camembert-base": "almanach/camembert-base",
    "transfo-xl-wt103": "transfo-xl/transfo-xl-wt103",
}

# (name prefix, organisation), most specific first; matched case-insensitively at the start of a
# bare name. A guess, never applied by ``fix-model-ids``.
FAMILY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("Llama-3.1-Nemotron", "nvidia"), ("Nemotron", "nvidia"),
    ("Mistral-", "mistralai"), ("Mixtral-", "mistralai"), ("Ministral-", "mistralai"),
    ("Codestral-", "mistralai"), ("Devstral-", "mistralai"), ("Magistral-", "mistralai"),
    ("Mathstral-", "mistralai"), ("Pixtral-", "mistralai"), ("Voxtral-", "mistralai"),
    ("Meta-Llama-", "meta-llama"), ("Llama-2-", "meta-llama"), ("Llama-3", "meta-llama"),
    ("Llama-4", "meta-llama"), ("Llama-Guard", "meta-llama"), ("CodeLlama-", "codellama"),
    ("TinyLlama", "TinyLlama"), ("Qwen", "Qwen"), ("QwQ-", "Qwen"),
    ("gemma", "google"), ("codegemma", "google"), ("paligemma", "google"), ("flan-t5", "google"),
    ("Phi-", "microsoft"), ("DeepSeek-", "deepseek-ai"), ("deepseek-", "deepseek-ai"),
    ("falcon-", "tiiuae"), ("Falcon3-", "tiiuae"), ("pythia-", "EleutherAI"), ("gpt-neox-", "EleutherAI"),
    ("gpt-j-", "EleutherAI"), ("SmolLM", "HuggingFaceTB"), ("OLMo-", "allenai"), ("granite-", "ibm-granite"),
    ("bloomz", "bigscience"), ("bloom-", "bigscience"), ("Yi-", "01-ai"), ("starcoder", "bigcode"),
    ("opt-", "facebook"), ("gpt-oss-", "openai"), ("zephyr-", "HuggingFaceH4"),
)

_ORG_BY_LOWER = {org.lower(): org for org in KNOWN_ORGS}
_CANONICAL_BY_LOWER = {name.lower(): repo for name, repo in CANONICAL_IDS.items()}


def canonical_org(name: str) -> str | None:
    """The exact spelling of a known organisation (``qwen`` -> ``Qwen``), or None."""
    return _ORG_BY_LOWER.get(name.lower())


def canonical_id(name: str) -> str | None:
    """The canonical ``org/name`` of a legacy single-segment ID (``gpt2``), or None."""
    return _CANONICAL_BY_LOWER.get(name.lower())


def known_org_splits(text: str) -> list[tuple[str, str]]:
    """Every ``(org, name)`` reading of a dash-separated ``org-name`` where ``org`` is known.

    Longest organisation first: ``google-bert-bert-base`` reads as ``google-bert`` + ``bert-base``
    before ``google`` + ``bert-bert-base``. Organisations come back in their canonical case.
    """
    splits = []
    for i, ch in enumerate(text):
        if ch != "-" or i == 0 or i == len(text) - 1:
            continue
        org = canonical_org(text[:i])
        if org is not None:
            splits.append((org, text[i + 1 :]))
    return sorted(splits, key=lambda s: -len(s[0]))


def family_org(name: str) -> str | None:
    """The organisation that usually publishes a bare model name (``Mistral-7B-v0.1``), or None."""
    lower = name.lower()
    for prefix, org in FAMILY_PREFIXES:
        if lower.startswith(prefix.lower()):
            return org
    return None
