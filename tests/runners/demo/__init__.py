"""Tests of ``runners/demo``."""
