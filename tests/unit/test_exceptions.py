"""docs/errors.md's table and tests/support/errors_cases.py hold the same rows, and every case raises exactly its message.

The table cannot drift: a message changed in the code fails ``test_case_raises_its_message``; a
case changed without the table (or the reverse) fails ``test_table_matches_the_cases``. Rewrite
the table from the cases with ``python -m tests.support.errors_catalogue``.
"""

from __future__ import annotations

import pytest

from tests.support.errors_cases import CASES
from tests.support.errors_catalogue import DOC, WHEN, raised, table_rows


def test_catalogue_is_large_and_well_formed():
    ids = [case.id for case in CASES]
    assert len(ids) >= 40 and len(set(ids)) == len(ids), "at least 40 cases, unique ids"
    assert {case.when for case in CASES} == set(WHEN)
    for case in CASES:
        assert ". Fix: " in case.message, f"{case.id}: every message says how to fix it"


def test_table_matches_the_cases():
    rows = table_rows(DOC.read_text())
    cases = {case.id: (case.code, case.when, case.error.__name__, case.message) for case in CASES}
    assert sorted(set(cases) - set(rows)) == [], "cases missing from docs/errors.md"
    assert sorted(set(rows) - set(cases)) == [], "rows of docs/errors.md without a case"
    for case_id, expected in cases.items():
        assert rows[case_id] == expected, f"docs/errors.md row {case_id!r} differs from its case"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case_raises_its_message(case):
    error = raised(case)
    assert error is not None, f"{case.code} raised nothing"
    assert type(error) is case.error, f"{case.code} raised {type(error).__name__}: {error}"
    assert str(error) == case.message
