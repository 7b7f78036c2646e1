"""Tests of ``gates/release``."""
