"""Tests of ``runners/pipeline``."""
