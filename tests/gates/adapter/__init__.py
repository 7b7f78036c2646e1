"""Tests of ``gates/adapter``."""
