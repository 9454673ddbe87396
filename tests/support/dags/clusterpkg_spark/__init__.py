"""A package next to the DAG file that Spark UDFs import on the cluster (shipped by the code bundle)."""
