"""Hostile-input checks."""
