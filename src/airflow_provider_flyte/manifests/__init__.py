"""Kubernetes manifests of each engine's job (one module per engine), built from its plugin config."""
