"""Tests of ``gates/merge``."""
