"""Hostile input and fault tests: each defect of issue 14 replayed as a test."""
