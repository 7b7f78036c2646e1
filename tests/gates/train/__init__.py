"""Tests of ``gates/train``."""
