"""Composition root: builds the platform from settings and runs it."""
