"""A package next to the DAG file that Ray remote functions import on the cluster (shipped by the code bundle)."""
