"""A package next to the DAG file that Dask workers on the cluster import (shipped by the code bundle)."""
