"""Tests of ``gates/config``."""
