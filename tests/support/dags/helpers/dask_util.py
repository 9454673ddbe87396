"""A helper module beside the Dask test DAGs: Dask workers must be able to import it."""

from __future__ import annotations

import os
import sys


def square_here(x: int) -> dict:
    """``x * x``, with the process that computed it and where this module was loaded from."""
    return {"value": x * x, "pid": os.getpid(), "module_file": __file__, "sys_path_0": sys.path[0]}
