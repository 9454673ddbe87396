"""The DAG author's side: TaskEnvironment fields, Flyte task parameters and templates become a TaskSpec.

No hook and no runner is imported here: the operator hands the spec built here to the runner.
"""
