"""Tests of ``gates/tokenizer``."""
