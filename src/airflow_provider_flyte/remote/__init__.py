"""A task run away from the worker (a pod on Kubernetes): staging, jobs, the pod's side, waiting."""
