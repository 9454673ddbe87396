"""remote/jobs: the retry policy of a long wait's looks (the trigger), plain data."""

from __future__ import annotations

from airflow_provider_flyte.remote.jobs import LOOK_RETRIES, look_retry_delay, transient_look_error


class ApiError(Exception):
    def __init__(self, status: int | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def test_transient_errors_are_retried_up_to_the_limit() -> None:
    for status in (429, 500, 502, 503, 504, None):
        assert transient_look_error(ApiError(status), 0)
        assert not transient_look_error(ApiError(status), LOOK_RETRIES)
    assert transient_look_error(ValueError("connection dropped"), LOOK_RETRIES - 1)
    for status in (401, 403, 404, 409):
        assert not transient_look_error(ApiError(status), 0)


def test_the_pause_doubles_up_to_thirty_seconds() -> None:
    assert [look_retry_delay(n, 2.0) for n in (1, 2, 3, 4, 5)] == [4.0, 8.0, 16.0, 30.0, 30.0]
