"""Integrations with other frameworks (each needs its own extra, e.g. ``[flask]``)."""
