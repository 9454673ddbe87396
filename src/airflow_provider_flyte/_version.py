"""The package version: the one source (pyproject reads it, provider info reports it)."""

__version__ = "0.1.0"
