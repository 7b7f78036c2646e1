"""Tests of ``runners/cli``."""
