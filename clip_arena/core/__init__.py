"""Shared base for every package: user-facing errors, settings and version."""
