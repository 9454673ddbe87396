"""``python -m airflow_provider_flyte.runtime <spec-uri>``: see :mod:`airflow_provider_flyte.runtime.entrypoint`.

The file also runs as a script (``spark-submit .../runtime/__main__.py <spec-uri>``).
"""

from airflow_provider_flyte.runtime.entrypoint import main

if __name__ == "__main__":
    raise SystemExit(main())
