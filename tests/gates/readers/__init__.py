"""Tests of ``gates/readers``."""
