"""sftgate gates: validation gates for fine-tuning LLMs (no torch needed to import)."""

__version__ = "0.1.0"
