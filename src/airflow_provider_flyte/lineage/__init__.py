"""OpenLineage: what a task's engine job is told of the Airflow task run that started it, and the
operator's own run facet (docs/lineage.md).

Nothing here imports ``openlineage`` or the openlineage provider when the package is imported:
:mod:`.parent` imports them inside the functions the operator calls at execute time, and
:mod:`.facet` (which defines an OpenLineage facet class) is imported only from those functions.
"""
