"""Changed by test_warm_dask between two DAG runs: workers must import the new version."""

VERSION = 1
