"""The real control plane's fixtures come from tests/kubernetes/conftest.py (one per session: a second would start
another control plane)."""
