"""Tests of ``gates/data``."""
