"""Tests of ``runners/work``."""
